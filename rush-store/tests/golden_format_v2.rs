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
    CASES, Case, GoldenEvent, GoldenState, HEADER_LEN, KIND_EVENT, KIND_LOG_ENTRY, KIND_SNAPSHOT,
    KIND_TABLE_ROW, SNAPSHOT_AT, check_flags_covered, check_record, expected_events, golden_dir,
    header, hex, read_fixture, state_after,
};
use golden_meta::{
    Meta, PLAIN_VERSION, ROW_VALUE, bincode_exact, check_api, expected_meta, log_key, row_key,
};
use std::io::Read as _;

const EVENT_VERSION: u8 = 2;

/// The plaintext body of a record that is not encrypted (gunzipped when compressed).
fn plain_body(record: &[u8]) -> Vec<u8> {
    let h = header(record);
    let body = &record[HEADER_LEN..HEADER_LEN + h.body_len];
    if h.flags & golden::FLAG_COMPRESSED == 0 {
        return body.to_vec();
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

// ------------------------------------------------------------------ generation

// ------------------------------------------------------------------ checks

/// The key layout and every record byte by byte; returns the events' header timestamps.
fn check_bytes(case: Case, records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u64> {
    let events = expected_events();
    let metas = expected_meta();
    let head = events.len() as u64;

    // Events, snapshots, one log block per persist call, the table row; nothing else.
    let block_starts: Vec<u64> = golden::script()
        .iter()
        .scan(1u64, |next, batch| {
            let first = *next;
            *next += batch.len() as u64;
            Some(first)
        })
        .collect();
    let mut expected_keys: Vec<Vec<u8>> = (1..=head)
        .map(|seq| case.record_key(KIND_EVENT, Some(seq)))
        .collect();
    expected_keys.extend(
        SNAPSHOT_AT
            .iter()
            .map(|seq| case.record_key(KIND_SNAPSHOT, Some(*seq))),
    );
    expected_keys.extend(block_starts.iter().copied().map(log_key));
    expected_keys.push(row_key());
    let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, expected_keys, "{}: keys", case.name);

    let mut flags_seen = Vec::new();
    let mut event_stamps = Vec::new();
    let mut log_entries = Vec::new();
    for (key, value) in records {
        let what = format!("{}: record {}", case.name, hex(key));
        match key[0] {
            KIND_EVENT => {
                flags_seen.push(check_record(case, EVENT_VERSION, key, value));
                event_stamps.push(header(value).timestamp_micros);
                if !case.encrypted {
                    // [meta len u32 BE][meta][payload], all bincode.
                    let seq = event_stamps.len();
                    let body = plain_body(value);
                    let meta_len = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
                    assert!(meta_len <= 64 * 1024, "{what}: meta length {meta_len}");
                    let meta: Meta = bincode_exact(&body[4..4 + meta_len]);
                    assert_eq!(meta, metas[seq - 1], "{what}: meta block");
                    let event: GoldenEvent = bincode_exact(&body[4 + meta_len..]);
                    assert_eq!(event, events[seq - 1], "{what}: payload");
                }
            }
            KIND_SNAPSHOT => {
                flags_seen.push(check_record(case, PLAIN_VERSION, key, value));
                if !case.encrypted {
                    let seq = u64::from_be_bytes(key[key.len() - 8..].try_into().unwrap());
                    let state: GoldenState = bincode_exact(&plain_body(value));
                    assert_eq!(state, state_after(&events[..seq as usize]), "{what}");
                }
            }
            KIND_TABLE_ROW => {
                // Tables never compress; sealed with the row key as identity.
                let flags = golden::check_sealed(
                    case.name,
                    case.encrypted,
                    false,
                    PLAIN_VERSION,
                    key,
                    value,
                );
                flags_seen.push(flags);
                if !case.encrypted {
                    assert_eq!(
                        bincode_exact::<u64>(&plain_body(value)),
                        ROW_VALUE,
                        "{what}"
                    );
                }
            }
            KIND_LOG_ENTRY => log_entries.push((key, value)),
            other => panic!("{}: unexpected key kind {other}", case.name),
        }
    }
    check_flags_covered(case, &flags_seen);

    // Log blocks: [1][count u32]([len u32][entry])*[crc32 of key ‖ block], one per persist call, keyed by the
    // offset of their first entry. Entry at offset n: [1][timestamp u64][seq u64][entity
    // id], pointing at event n (one entity per fixture), with that event's timestamp.
    let mut offset = 1u64;
    for ((key, block), first) in log_entries.iter().zip(&block_starts) {
        let what = format!("{}: log block {first}", case.name);
        assert_eq!(**key, log_key(*first), "{what}: key");
        assert_eq!(offset, *first, "{what}: offsets continue");
        assert_eq!(block[0], 1, "{what}: block version");
        let count = u32::from_be_bytes(block[1..5].try_into().unwrap()) as usize;
        let mut at = 5;
        for _ in 0..count {
            let len = u32::from_be_bytes(block[at..at + 4].try_into().unwrap()) as usize;
            let value = &block[at + 4..at + 4 + len];
            at += 4 + len;
            let what = format!("{}: log entry {offset}", case.name);
            assert_eq!(value.len(), 17 + case.entity().len(), "{what}: length");
            assert_eq!(value[0], 1, "{what}: entry version");
            let stamp = u64::from_be_bytes(value[1..9].try_into().unwrap());
            assert_eq!(
                stamp,
                event_stamps[offset as usize - 1],
                "{what}: timestamp"
            );
            let seq = u64::from_be_bytes(value[9..17].try_into().unwrap());
            assert_eq!(seq, offset, "{what}: sequence number");
            assert_eq!(&value[17..], case.entity().as_bytes(), "{what}: entity id");
            offset += 1;
        }
        assert_eq!(at + 4, block.len(), "{what}: a CRC-32 after the entries");
        let mut crc = crc32fast::Hasher::new();
        crc.update(key);
        crc.update(&block[..at]);
        assert_eq!(
            crc.finalize().to_be_bytes(),
            block[at..],
            "{what}: CRC-32 of key and block"
        );
    }
    assert_eq!(offset, head + 1, "{}: every event has an offset", case.name);
    event_stamps
}

fn check_fixture(case: Case, records: &[(Vec<u8>, Vec<u8>)]) {
    check_bytes(case, records);
    check_api(case, records);
}

#[test]
fn golden_v2_records_still_decode() {
    let dir = golden_dir("v2");
    for case in CASES {
        check_fixture(case, &read_fixture(&case.file(&dir)));
    }
}
