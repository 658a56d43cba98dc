//! The collection-log block decoder and its entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rush_store::fuzzing::decode_log_block;

fuzz_target!(|data: &[u8]| {
    let _ = decode_log_block(data);
});
