//! The record envelope decoder: header, length, CRC or tag, bounded gunzip, bincode
//! (events v1/v2 with their meta block, and v1 states), without and with a key.
//! Input: `[identity length u8][identity][record]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rush_store::fuzzing::{FUZZ_KEY, decode_record, split_input};

fuzz_target!(|data: &[u8]| {
    let (identity, record) = split_input(data);
    let _ = decode_record(identity, record, None);
    let _ = decode_record(identity, record, Some(FUZZ_KEY));
});
