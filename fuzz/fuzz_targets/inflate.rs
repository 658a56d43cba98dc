//! Bounded gunzip: no input may make it produce (or allocate) more than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rush_store::fuzzing::{INFLATE_LIMIT, inflate};

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = inflate(data, INFLATE_LIMIT) {
        assert!(out.len() <= INFLATE_LIMIT);
    }
});
