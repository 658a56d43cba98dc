//! Golden files of the on-disk record format v2: events with a meta block (type, schema
//! version, tags, metadata), snapshots and table rows still v1, and the collection log
//! (key kind 0x05). The fixtures are kept in `tests/golden/v2/` and every later build must
//! still read them. This build writes format v3 (`golden_format_v3.rs`): it can no longer
//! generate these fixtures, only read them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/golden.rs"]
mod golden;
#[path = "support/golden_meta.rs"]
mod golden_meta;

use golden::{
    CASES, Case, GoldenEvent, check_record, expected_events, golden_dir, header, hex, plain_body,
    read_fixture,
};
use golden_meta::{Layout, Meta, bincode_exact, check_api, check_bytes, expected_meta};

const EVENT_VERSION: u8 = 2;

// ------------------------------------------------------------------ checks

/// Format 2: a 20-byte header, `[meta len u32 BE][meta][payload]` (all bincode), log
/// blocks `[1][count u32]([len u32][entry])*[crc32]` of entries
/// `[1][timestamp u64][seq u64][entity id]`.
const LAYOUT: Layout = Layout {
    event: check_event,
    block_version: 1,
    block_entries,
    entry_fields,
};

fn check_event(case: Case, key: &[u8], value: &[u8], seq: usize) -> (u8, u64) {
    let flags = check_record(case, EVENT_VERSION, key, value);
    if !case.encrypted {
        let what = format!("{}: record {}", case.name, hex(key));
        let body = plain_body(value);
        let meta_len = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
        assert!(meta_len <= 64 * 1024, "{what}: meta length {meta_len}");
        let meta: Meta = bincode_exact(&body[4..4 + meta_len]);
        assert_eq!(meta, expected_meta()[seq - 1], "{what}: meta block");
        let event: GoldenEvent = bincode_exact(&body[4 + meta_len..]);
        assert_eq!(event, expected_events()[seq - 1], "{what}: payload");
    }
    (flags, header(value).timestamp_micros)
}

fn block_entries(_: &str, block: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let count = u32::from_be_bytes(block[1..5].try_into().unwrap()) as usize;
    let mut at = 5;
    let mut entries = Vec::new();
    for _ in 0..count {
        let len = u32::from_be_bytes(block[at..at + 4].try_into().unwrap()) as usize;
        entries.push(block[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
    (entries, at)
}

fn entry_fields(what: &str, entry: &[u8]) -> (u64, u64, Vec<u8>) {
    assert_eq!(entry[0], 1, "{what}: entry version");
    assert!(entry.len() > 17, "{what}: length");
    (
        u64::from_be_bytes(entry[1..9].try_into().unwrap()),
        u64::from_be_bytes(entry[9..17].try_into().unwrap()),
        entry[17..].to_vec(),
    )
}

fn check_fixture(case: Case, records: &[(Vec<u8>, Vec<u8>)]) {
    check_bytes(case, records, &LAYOUT);
    check_api(case, records);
}

#[test]
fn golden_v2_records_still_decode() {
    let dir = golden_dir("v2");
    for case in CASES {
        check_fixture(case, &read_fixture(&case.file(&dir)));
    }
}
