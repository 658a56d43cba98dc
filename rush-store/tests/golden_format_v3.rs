//! Golden files of the on-disk record format v3: events with a compact header (version,
//! flags, key id only when sealed, timestamp), 12 bytes of nonce material, and the compact
//! meta block; snapshots and table rows still v1; the collection log in block and entry
//! version 2 (prefix-compressed entries). The fixtures are kept in `tests/golden/v3/` and
//! every later build must still read them.
//!
//! With `RUSH_REGENERATE_GOLDEN=1` the test first writes the v3 fixtures that do not exist
//! yet (it refuses to overwrite one, and never writes anywhere but `tests/golden/v3/`),
//! then reads them like any other run. See the README there.
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
    CASES, CRC_LEN, Case, FLAG_COMPRESSED, FLAG_ENCRYPTED, GoldenEvent, GoldenState, KEY,
    KIND_EVENT, KIND_LOG_ENTRY, KIND_SNAPSHOT, KIND_TABLE_ROW, SNAPSHOT_AT, TAG_LEN, case_comments,
    check_flags_covered, check_record, crc32, expected_events, golden_dir, hex, parse,
    read_fixture, regenerating, render, state_after, write_new_fixture,
};
use golden_meta::{
    Meta, PLAIN_VERSION, ROW_VALUE, bincode_exact, check_api, expected_meta, generate, log_key,
    row_key,
};
use rush_store::EncryptionKey;
use std::io::Read as _;

const EVENT_VERSION: u8 = 3;
/// Bytes of nonce material in front of a sealed v3 body.
const NONCE_MATERIAL_LEN: usize = 12;

/// A v3 header: `[3][flags][key id u32 BE, only when encrypted][timestamp u64 BE]`.
struct HeaderV3 {
    version: u8,
    flags: u8,
    key_id: Option<u32>,
    timestamp_micros: u64,
    len: usize,
}

fn header_v3(record: &[u8]) -> HeaderV3 {
    let flags = record[1];
    let (key_id, at) = if flags & FLAG_ENCRYPTED != 0 {
        (
            Some(u32::from_be_bytes(record[2..6].try_into().unwrap())),
            6,
        )
    } else {
        (None, 2)
    };
    HeaderV3 {
        version: record[0],
        flags,
        key_id,
        timestamp_micros: u64::from_be_bytes(record[at..at + 8].try_into().unwrap()),
        len: at + 8,
    }
}

/// Byte-level facts of a v3 event record; returns its flags.
fn check_event_record(case: Case, key: &[u8], record: &[u8]) -> u8 {
    let h = header_v3(record);
    let what = format!("{}: record {}", case.name, hex(key));
    assert_eq!(h.version, EVENT_VERSION, "{what}: version byte");
    assert_eq!(
        h.flags & !(FLAG_COMPRESSED | FLAG_ENCRYPTED),
        0,
        "{what}: unknown flags"
    );
    assert_eq!(
        h.flags & FLAG_ENCRYPTED != 0,
        case.encrypted,
        "{what}: encrypted flag"
    );
    if !case.compressed {
        assert_eq!(h.flags & FLAG_COMPRESSED, 0, "{what}: compressed flag");
    }
    if case.encrypted {
        // material (12) || ciphertext || tag (16), no trailer.
        assert_eq!(h.len, 14, "{what}: header length");
        assert!(
            record.len() >= h.len + NONCE_MATERIAL_LEN + TAG_LEN,
            "{what}: body too short"
        );
        assert_eq!(
            h.key_id,
            Some(EncryptionKey::new(KEY).unwrap().id()),
            "{what}: key id"
        );
    } else {
        // CRC-32 of key || header || body, big-endian, after the body.
        assert_eq!(h.len, 10, "{what}: header length");
        let body_end = record.len() - CRC_LEN;
        let stored = u32::from_be_bytes(record[body_end..].try_into().unwrap());
        assert_eq!(
            crc32(&[key, &record[..body_end]]),
            stored,
            "{what}: checksum"
        );
        if h.flags & FLAG_COMPRESSED != 0 {
            assert_eq!(
                &record[h.len..h.len + 4],
                &[0x1f, 0x8b, 8, 0],
                "{what}: gzip header"
            );
        }
    }
    h.flags
}

/// The plaintext body of a v3 record that is not encrypted (gunzipped when compressed).
fn plain_body_v3(record: &[u8]) -> Vec<u8> {
    let h = header_v3(record);
    let body = &record[h.len..record.len() - CRC_LEN];
    if h.flags & FLAG_COMPRESSED == 0 {
        return body.to_vec();
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The plaintext body of a version-1 record (snapshots, table rows) that is not encrypted.
fn plain_body(record: &[u8]) -> Vec<u8> {
    let h = golden::header(record);
    let body = &record[golden::HEADER_LEN..golden::HEADER_LEN + h.body_len];
    if h.flags & FLAG_COMPRESSED == 0 {
        return body.to_vec();
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// bincode's standard varint: below 251 one byte; else 251, 252, 253 and a little-endian
/// u16, u32, u64.
fn varint(rest: &mut &[u8]) -> u64 {
    let (value, len) = match rest[0] {
        small @ 0..=250 => (u64::from(small), 1),
        251 => (
            u64::from(u16::from_le_bytes(rest[1..3].try_into().unwrap())),
            3,
        ),
        252 => (
            u64::from(u32::from_le_bytes(rest[1..5].try_into().unwrap())),
            5,
        ),
        253 => (u64::from_le_bytes(rest[1..9].try_into().unwrap()), 9),
        other => panic!("varint marker {other}"),
    };
    *rest = &rest[len..];
    value
}

fn text(rest: &mut &[u8]) -> String {
    let len = varint(rest) as usize;
    let text = String::from_utf8(rest[..len].to_vec()).unwrap();
    *rest = &rest[len..];
    text
}

/// The v3 meta block: `[type][schema version varint][fields u8]`, then the tags (bit 0:
/// count varint and texts) and the correlation, causation, user and tenant ids (bits 1..4),
/// each text a varint length and UTF-8.
fn read_meta(rest: &mut &[u8]) -> Meta {
    let event_type = text(rest);
    let schema_version = u32::try_from(varint(rest)).unwrap();
    let fields = rest[0];
    *rest = &rest[1..];
    assert_eq!(fields & !0b1_1111, 0, "unknown meta fields {fields:#04x}");
    let tags = if fields & 1 != 0 {
        let count = varint(rest);
        (0..count).map(|_| text(rest)).collect()
    } else {
        Vec::new()
    };
    let mut id = |bit: u8| (fields & bit != 0).then(|| text(rest));
    Meta {
        event_type,
        schema_version,
        tags,
        correlation_id: id(1 << 1),
        causation_id: id(1 << 2),
        user_id: id(1 << 3),
        tenant_id: id(1 << 4),
    }
}

// ------------------------------------------------------------------ generation

fn regenerate() {
    let dir = golden_dir("v3");
    let mut written = Vec::new();
    for case in CASES {
        let file = case.file(&dir);
        if file.exists() {
            continue;
        }
        let records = generate(case);
        // Only ever v3 fixtures, and only into v3/: a build that writes another version
        // must get its own generator and folder.
        let events = records.iter().filter(|(key, _)| key[0] == KIND_EVENT);
        assert!(
            events.clone().all(|(_, value)| value[0] == EVENT_VERSION),
            "this build does not write format v{EVENT_VERSION} events: not writing {}",
            file.display()
        );
        let comments = case_comments(case, EVENT_VERSION, "tests/golden_format_v3.rs");
        write_new_fixture(&file, &render(&comments, &records));
        written.push(file);
    }
    eprintln!("golden_format_v3: wrote {written:#?}");
}

// ------------------------------------------------------------------ checks

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
                flags_seen.push(check_event_record(case, key, value));
                event_stamps.push(header_v3(value).timestamp_micros);
                if !case.encrypted {
                    // [meta][payload]: the meta block of FORMAT.md, then bincode.
                    let seq = event_stamps.len();
                    let body = plain_body_v3(value);
                    let mut rest = &body[..];
                    let meta = read_meta(&mut rest);
                    assert_eq!(meta, metas[seq - 1], "{what}: meta block");
                    let event: GoldenEvent = bincode_exact(rest);
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

    // Log blocks (version 2): [2][count varint]([shared varint][suffix len varint][suffix])*
    // [crc32 of key ‖ block], one per persist call, keyed by the offset of their first
    // entry; each entry is the first `shared` bytes of the one before and its suffix.
    // Entry at offset n: [2][timestamp u64][len u16][entity id][seq u64], pointing at event
    // n (one entity per fixture), with that event's timestamp. The writer takes the longest
    // shared prefix.
    let mut offset = 1u64;
    for ((key, block), first) in log_entries.iter().zip(&block_starts) {
        let what = format!("{}: log block {first}", case.name);
        assert_eq!(**key, log_key(*first), "{what}: key");
        assert_eq!(offset, *first, "{what}: offsets continue");
        assert_eq!(block[0], 2, "{what}: block version");
        let mut rest = &block[1..];
        let count = varint(&mut rest);
        let mut entry: Vec<u8> = Vec::new();
        for i in 0..count {
            let shared = varint(&mut rest) as usize;
            let suffix_len = varint(&mut rest) as usize;
            if i == 0 {
                assert_eq!(shared, 0, "{what}: the first entry shares nothing");
            } else if shared < entry.len() && suffix_len > 0 {
                assert_ne!(
                    entry[shared], rest[0],
                    "{what}: a shorter prefix than possible"
                );
            }
            entry.truncate(shared);
            entry.extend_from_slice(&rest[..suffix_len]);
            rest = &rest[suffix_len..];
            let what = format!("{}: log entry {offset}", case.name);
            let entity = case.entity().as_bytes();
            assert_eq!(entry.len(), 3 + entity.len() + 16, "{what}: length");
            assert_eq!(entry[0], 2, "{what}: entry version");
            let stamp = u64::from_be_bytes(entry[1..9].try_into().unwrap());
            assert_eq!(
                stamp,
                event_stamps[offset as usize - 1],
                "{what}: timestamp"
            );
            assert_eq!(
                u16::from_be_bytes(entry[9..11].try_into().unwrap()) as usize,
                entity.len(),
                "{what}: entity id length"
            );
            assert_eq!(&entry[11..11 + entity.len()], entity, "{what}: entity id");
            let seq = u64::from_be_bytes(entry[11 + entity.len()..].try_into().unwrap());
            assert_eq!(seq, offset, "{what}: sequence number");
            offset += 1;
        }
        let at = block.len() - rest.len();
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
fn golden_v3_records_still_decode() {
    if regenerating() {
        regenerate();
    }
    let dir = golden_dir("v3");
    for case in CASES {
        check_fixture(case, &read_fixture(&case.file(&dir)));
    }
}

/// The test's own pieces: the fixture format round-trips, the CRC is the standard one,
/// and fresh records of this build have the same shape as the fixtures.
#[test]
fn fixture_format_round_trips_and_fresh_records_match() {
    assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
    for case in CASES {
        let records = generate(case);
        let comments = case_comments(case, EVENT_VERSION, "test");
        assert_eq!(
            parse(&render(&comments, &records)),
            records,
            "{}",
            case.name
        );
        check_fixture(case, &records);
    }
}
