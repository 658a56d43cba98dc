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
    CASES, CRC_LEN, Case, FLAG_COMPRESSED, FLAG_ENCRYPTED, GoldenEvent, KEY, KIND_EVENT, TAG_LEN,
    case_comments, crc32, expected_events, golden_dir, hex, parse, read_fixture, regenerating,
    render, write_new_fixture,
};
use golden_meta::{Layout, Meta, bincode_exact, check_api, check_bytes, expected_meta, generate};
use rush_store::EncryptionKey;

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
    golden::gunzip_if_compressed(h.flags, &record[h.len..record.len() - CRC_LEN])
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

/// Format 3: the compact header and meta block above; log blocks version 2,
/// `[2][count varint]([shared varint][suffix len varint][suffix])*[crc32]`, each entry the
/// first `shared` bytes of the one before and its suffix, the longest shared prefix taken;
/// entries `[2][timestamp u64][len u16][entity id][seq u64]`.
const LAYOUT: Layout = Layout {
    event: check_event,
    block_version: 2,
    block_entries,
    entry_fields,
};

fn check_event(case: Case, key: &[u8], value: &[u8], seq: usize) -> (u8, u64) {
    let flags = check_event_record(case, key, value);
    if !case.encrypted {
        // [meta][payload]: the meta block of FORMAT.md, then bincode.
        let what = format!("{}: record {}", case.name, hex(key));
        let body = plain_body_v3(value);
        let mut rest = &body[..];
        let meta = read_meta(&mut rest);
        assert_eq!(meta, expected_meta()[seq - 1], "{what}: meta block");
        let event: GoldenEvent = bincode_exact(rest);
        assert_eq!(event, expected_events()[seq - 1], "{what}: payload");
    }
    (flags, header_v3(value).timestamp_micros)
}

fn block_entries(what: &str, block: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut rest = &block[1..];
    let count = varint(&mut rest);
    let mut entries: Vec<Vec<u8>> = Vec::new();
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
        entries.push(entry.clone());
    }
    (entries, block.len() - rest.len())
}

fn entry_fields(what: &str, entry: &[u8]) -> (u64, u64, Vec<u8>) {
    assert_eq!(entry[0], 2, "{what}: entry version");
    let len = u16::from_be_bytes(entry[9..11].try_into().unwrap()) as usize;
    assert_eq!(entry.len(), 11 + len + 8, "{what}: length");
    (
        u64::from_be_bytes(entry[1..9].try_into().unwrap()),
        u64::from_be_bytes(entry[11 + len..].try_into().unwrap()),
        entry[11..11 + len].to_vec(),
    )
}

fn check_fixture(case: Case, records: &[(Vec<u8>, Vec<u8>)]) {
    check_bytes(case, records, &LAYOUT);
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
