//! Opening records sealed with XChaCha20-Poly1305 under a fixed key (the golden files'),
//! with the identity as associated data. Input: `[identity length u8][identity][record]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rush_store::fuzzing::{open_sealed, split_input};

fuzz_target!(|data: &[u8]| {
    let (identity, record) = split_input(data);
    let _ = open_sealed(identity, record);
});
