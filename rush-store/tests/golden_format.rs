//! Golden files of the on-disk record format v1: records written by this version are kept
//! in `tests/golden/v1/` and every later build must still read them.
//!
//! Normally the test loads each fixture into a fresh `MemoryManager` and checks what it
//! decodes to. With `RUSH_REGENERATE_GOLDEN=1` it first writes the fixtures of the format
//! version this build writes, into `tests/golden/v<N>/`, refusing to overwrite existing
//! files: the fixtures of a released version are never regenerated (see the README there).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rush_store::{
    Backend, CompressionConfig, CompressionLevel, EncryptionKey, Error, MemoryManager,
    PersistentActor, Store, WriteBatch, WriteOp,
};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

// ------------------------------------------------------------------ the fixed test types
// Never change these types or the values below: the fixtures hold them in bincode.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum GoldenEvent {
    Renamed(String),
    Recorded {
        label: String,
        count: u64,
        weight: f64,
    },
    Cleared,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct GoldenState {
    name: String,
    total: u64,
    weight: f64,
    labels: Vec<String>,
}

impl PersistentActor for GoldenState {
    type Event = GoldenEvent;

    fn apply(&mut self, event: &GoldenEvent) {
        match event {
            GoldenEvent::Renamed(name) => self.name.clone_from(name),
            GoldenEvent::Recorded {
                label,
                count,
                weight,
            } => {
                self.total = self.total.wrapping_add(*count);
                self.weight += weight;
                self.labels.push(label.clone());
            }
            GoldenEvent::Cleared => self.labels.clear(),
        }
    }
}

const VERSION: u8 = 1;
const COLLECTION: &str = "golden";
/// The fixed test key of the encrypted fixtures (exactly 32 bytes).
const KEY: &[u8; 32] = b"rush-store golden test key v1!!!";
const HEADER_LEN: usize = 20;
const CRC_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const FLAG_COMPRESSED: u8 = 0b01;
const FLAG_ENCRYPTED: u8 = 0b10;
const KIND_EVENT: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;
/// Snapshots are taken after these sequence numbers.
const SNAPSHOT_AT: [u64; 2] = [3, 7];

/// More than 128 bytes and repetitive: stored compressed when compression is on.
fn long_label() -> String {
    "the quick brown fox jumps over the lazy dog; ".repeat(6)
}

/// The events of every fixture, in order, as they were persisted: `(batch, events)`.
fn script() -> Vec<Vec<GoldenEvent>> {
    vec![
        vec![GoldenEvent::Renamed("golden entity".into())],
        vec![GoldenEvent::Recorded {
            label: "alpha".into(),
            count: 1,
            weight: 0.5,
        }],
        vec![GoldenEvent::Recorded {
            label: "grüße 🦀".into(),
            count: 300,
            weight: -1.25e-3,
        }],
        // Snapshot at 3 (small state: never compressed).
        vec![
            GoldenEvent::Recorded {
                label: long_label(),
                count: u64::MAX,
                weight: 1.0 / 3.0,
            },
            GoldenEvent::Renamed(String::new()),
            GoldenEvent::Recorded {
                label: String::new(),
                count: 0,
                weight: 6.022_140_76e23,
            },
        ],
        vec![GoldenEvent::Renamed(format!("renamed: {}", long_label()))],
        // Snapshot at 7 (holds the long label: compressed when compression is on).
        vec![GoldenEvent::Cleared],
        vec![
            GoldenEvent::Recorded {
                label: "omega".into(),
                count: 42,
                weight: f64::MIN_POSITIVE,
            },
            GoldenEvent::Recorded {
                label: "last".into(),
                count: 7,
                weight: -0.0,
            },
        ],
    ]
}

fn expected_events() -> Vec<GoldenEvent> {
    script().into_iter().flatten().collect()
}

fn state_after(events: &[GoldenEvent]) -> GoldenState {
    let mut state = GoldenState::default();
    for event in events {
        state.apply(event);
    }
    state
}

/// One fixture: an entity written with or without compression and encryption.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    compressed: bool,
    encrypted: bool,
}

const CASES: [Case; 4] = [
    Case {
        name: "plain",
        compressed: false,
        encrypted: false,
    },
    Case {
        name: "compressed",
        compressed: true,
        encrypted: false,
    },
    Case {
        name: "encrypted",
        compressed: false,
        encrypted: true,
    },
    Case {
        name: "compressed-encrypted",
        compressed: true,
        encrypted: true,
    },
];

impl Case {
    /// The entity id is the case name.
    fn entity(self) -> &'static str {
        self.name
    }

    fn key(self) -> Option<&'static [u8]> {
        self.encrypted.then_some(KEY.as_slice())
    }

    fn file(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.records", self.name))
    }

    fn open(self, manager: MemoryManager) -> Store<GoldenState> {
        Store::new(
            COLLECTION,
            self.entity(),
            manager,
            self.key(),
            self.compressed,
        )
        .unwrap()
    }

    /// `[u16 len][collection][u16 len][entity]`, as in `src/keys.rs`.
    fn encoded_ids(self) -> Vec<u8> {
        let mut out = Vec::new();
        for id in [COLLECTION, self.entity()] {
            out.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
            out.extend_from_slice(id.as_bytes());
        }
        out
    }

    fn record_key(self, kind: u8, seq: Option<u64>) -> Vec<u8> {
        let mut key = vec![kind];
        key.extend_from_slice(&self.encoded_ids());
        if let Some(seq) = seq {
            key.extend_from_slice(&seq.to_be_bytes());
        }
        key
    }
}

fn golden_dir(version: u8) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(format!("v{version}"))
}

// ------------------------------------------------------------------ fixture files

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(out, "{b:02x}").unwrap();
    }
    out
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length: {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `#` comment lines, then one record per line: `hex(key) hex(value)`, in key order.
fn render(case: Case, records: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut out = String::new();
    writeln!(out, "# rush-store golden records, format v{VERSION}").unwrap();
    writeln!(
        out,
        "# case {:?}: collection {COLLECTION:?}, entity {:?}, compression {}, encryption {}",
        case.name,
        case.entity(),
        if case.compressed { "on" } else { "off" },
        if case.encrypted {
            "with the 32-byte ASCII key \"rush-store golden test key v1!!!\""
        } else {
            "off"
        },
    )
    .unwrap();
    writeln!(
        out,
        "# written by tests/golden_format.rs with RUSH_REGENERATE_GOLDEN=1; never edit or regenerate"
    )
    .unwrap();
    writeln!(
        out,
        "# one record per line, in key order: hex(key) SPACE hex(value)"
    )
    .unwrap();
    for (key, value) in records {
        writeln!(out, "{} {}", hex(key), hex(value)).unwrap();
    }
    out
}

fn parse(text: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("malformed fixture line {line:?}"));
            (unhex(key), unhex(value))
        })
        .collect()
}

/// Every record of a memory database (all keys start with a kind byte below 0xff).
fn dump(manager: &MemoryManager) -> Vec<(Vec<u8>, Vec<u8>)> {
    manager.scan(&[], &[0xff], usize::MAX, false).unwrap()
}

// ------------------------------------------------------------------ generation

/// Writes the script through a `Store`, as an application would.
fn generate(case: Case) -> Vec<(Vec<u8>, Vec<u8>)> {
    let manager = MemoryManager::default();
    let mut store = case.open(manager.clone());
    if case.compressed {
        // Pinned, so that the mix of compressed and plain records does not follow the defaults.
        store
            .set_compression_config(CompressionConfig {
                min_size_threshold: 128,
                min_ratio_threshold: 0.10,
                compression_level: CompressionLevel::Balanced,
            })
            .unwrap();
    }
    let mut persisted = Vec::new();
    for batch in script() {
        let seq = if batch.len() == 1 {
            store.persist(&batch[0]).unwrap()
        } else {
            store.persist_batch(&batch).unwrap()
        };
        persisted.extend(batch);
        assert_eq!(seq, persisted.len() as u64);
        if SNAPSHOT_AT.contains(&seq) {
            store.snapshot(&state_after(&persisted)).unwrap();
        }
    }
    dump(&manager)
}

fn regenerate() {
    let mut written = Vec::new();
    for case in CASES {
        let records = generate(case);
        let version = records
            .iter()
            .find(|(key, _)| key[0] == KIND_EVENT)
            .map(|(_, value)| value[0])
            .unwrap();
        let dir = golden_dir(version);
        std::fs::create_dir_all(&dir).unwrap();
        let file = case.file(&dir);
        assert!(
            !file.exists(),
            "{} exists: the fixtures of a format version are never regenerated \
             (delete it by hand only if it was never committed)",
            file.display()
        );
        std::fs::write(&file, render(case, &records)).unwrap();
        written.push(file);
    }
    eprintln!("golden_format: wrote {written:#?}");
}

// ------------------------------------------------------------------ checks

/// CRC-32 (IEEE, reflected, as crc32fast and zlib): written here from its definition so
/// the test does not share code with the implementation it checks.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The header of a record, field by field, as FORMAT v1 lays it out (big-endian).
struct Header {
    version: u8,
    flags: u8,
    codec: u8,
    reserved: u8,
    key_id: u32,
    timestamp_micros: u64,
    body_len: usize,
}

fn header(record: &[u8]) -> Header {
    assert!(record.len() >= HEADER_LEN, "record shorter than a header");
    Header {
        version: record[0],
        flags: record[1],
        codec: record[2],
        reserved: record[3],
        key_id: u32::from_be_bytes(record[4..8].try_into().unwrap()),
        timestamp_micros: u64::from_be_bytes(record[8..16].try_into().unwrap()),
        body_len: u32::from_be_bytes(record[16..20].try_into().unwrap()) as usize,
    }
}

/// Byte-level facts of one event or snapshot record; returns its flags.
fn check_record(case: Case, key: &[u8], record: &[u8]) -> u8 {
    let h = header(record);
    let what = format!("{}: record {}", case.name, hex(key));
    assert_eq!(h.version, VERSION, "{what}: version byte");
    assert_eq!(h.codec, 1, "{what}: codec byte (bincode)");
    assert_eq!(h.reserved, 0, "{what}: reserved byte");
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
    let body = &record[HEADER_LEN..HEADER_LEN + h.body_len];
    if case.encrypted {
        // nonce || ciphertext || tag, no trailer; the key id names the sealing key.
        assert_eq!(record.len(), HEADER_LEN + h.body_len, "{what}: length");
        assert!(h.body_len >= NONCE_LEN + TAG_LEN, "{what}: body too short");
        assert_eq!(
            h.key_id,
            EncryptionKey::new(KEY).unwrap().id(),
            "{what}: key id"
        );
    } else {
        // CRC-32 of key || header || body, big-endian, after the body.
        assert_eq!(
            record.len(),
            HEADER_LEN + h.body_len + CRC_LEN,
            "{what}: length"
        );
        assert_eq!(h.key_id, 0, "{what}: key id of a plain record");
        let stored = u32::from_be_bytes(record[HEADER_LEN + h.body_len..].try_into().unwrap());
        assert_eq!(
            crc32(&[key, &record[..HEADER_LEN + h.body_len]]),
            stored,
            "{what}: checksum"
        );
        if h.flags & FLAG_COMPRESSED != 0 {
            // gzip: magic, deflate, no flags.
            assert_eq!(&body[..4], &[0x1f, 0x8b, 8, 0], "{what}: gzip header");
        }
    }
    h.flags
}

fn load(records: &[(Vec<u8>, Vec<u8>)]) -> MemoryManager {
    let manager = MemoryManager::default();
    let ops = records
        .iter()
        .map(|(key, value)| WriteOp::Put {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    manager
        .commit(&WriteBatch {
            guards: Vec::new(),
            ops,
            ..Default::default()
        })
        .unwrap()
        .unwrap();
    manager
}

fn check_fixture(case: Case, records: &[(Vec<u8>, Vec<u8>)]) {
    let events = expected_events();
    let head = events.len() as u64;

    // The key layout: exactly the events and the snapshots of this entity (the journal's
    // end is its newest event; there is no separate head record).
    let mut expected_keys: Vec<Vec<u8>> = (1..=head)
        .map(|seq| case.record_key(KIND_EVENT, Some(seq)))
        .collect();
    expected_keys.extend(
        SNAPSHOT_AT
            .iter()
            .map(|seq| case.record_key(KIND_SNAPSHOT, Some(*seq))),
    );
    let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, expected_keys, "{}: keys", case.name);

    let mut flags_seen = Vec::new();
    for (key, value) in records {
        match key[0] {
            KIND_EVENT | KIND_SNAPSHOT => flags_seen.push(check_record(case, key, value)),
            other => panic!("{}: unexpected key kind {other}", case.name),
        }
    }
    // Each fixture holds the kinds of record it is meant to cover.
    let expect_present: &[u8] = match (case.compressed, case.encrypted) {
        (false, false) => &[0],
        (true, false) => &[0, FLAG_COMPRESSED],
        (false, true) => &[FLAG_ENCRYPTED],
        (true, true) => &[FLAG_ENCRYPTED, FLAG_COMPRESSED | FLAG_ENCRYPTED],
    };
    for flags in expect_present {
        assert!(
            flags_seen.contains(flags),
            "{}: no record with flags {flags:#04b} in {flags_seen:?}",
            case.name
        );
    }

    // Through the public API, as an application reads it.
    let manager = load(records);
    let store = case.open(manager.clone());
    assert_eq!(store.highest_sequence_number(), head, "{}", case.name);
    assert_eq!(store.events(0, u64::MAX).unwrap(), events, "{}", case.name);
    assert_eq!(
        store.recover().unwrap(),
        Some(state_after(&events)),
        "{}",
        case.name
    );
    for seq in [1, SNAPSHOT_AT[0], SNAPSHOT_AT[0] + 1, SNAPSHOT_AT[1], head] {
        assert_eq!(
            store.recover_at(seq).unwrap(),
            Some(state_after(&events[..seq as usize])),
            "{}: recover_at({seq})",
            case.name
        );
    }
    assert_eq!(
        store.snapshot_sequence_numbers().unwrap(),
        SNAPSHOT_AT.to_vec(),
        "{}",
        case.name
    );
    let report = store.verify_integrity().unwrap();
    assert!(report.is_ok(), "{}: {report:?}", case.name);
    assert_eq!(report.events_checked, head, "{}", case.name);
    assert_eq!(
        report.snapshots_checked,
        SNAPSHOT_AT.len() as u64,
        "{}",
        case.name
    );

    // Timestamps come from the headers: same in a batch, never going back.
    let with_metadata = store.events_with_metadata(0, u64::MAX).unwrap();
    let after_2020 = UNIX_EPOCH + Duration::from_secs(1_577_836_800);
    for (envelope, (key, value)) in with_metadata.iter().zip(records) {
        assert!(envelope.timestamp > after_2020, "{}: timestamp", case.name);
        let micros = envelope
            .timestamp
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros();
        assert_eq!(
            key,
            &case.record_key(KIND_EVENT, Some(envelope.sequence_number))
        );
        assert_eq!(
            u128::from(header(value).timestamp_micros),
            micros,
            "{}",
            case.name
        );
    }
    assert!(
        with_metadata
            .windows(2)
            .all(|w| w[0].timestamp <= w[1].timestamp)
    );
    let mut seq = 0;
    for batch in script() {
        let stamps: Vec<_> = with_metadata[seq..seq + batch.len()]
            .iter()
            .map(|e| e.timestamp)
            .collect();
        assert!(stamps.windows(2).all(|w| w[0] == w[1]), "{}", case.name);
        seq += batch.len();
    }

    // The key matters: a wrong one cannot open the encrypted fixtures.
    if case.encrypted {
        let wrong =
            Store::<GoldenState>::new(COLLECTION, case.entity(), manager, Some(&[9u8; 32]), false)
                .unwrap();
        assert!(
            matches!(wrong.events(0, u64::MAX), Err(Error::Decryption { .. })),
            "{}: a wrong key must not open the records",
            case.name
        );
    }
}

#[test]
fn golden_v1_records_still_decode() {
    if std::env::var("RUSH_REGENERATE_GOLDEN").as_deref() == Ok("1") {
        regenerate();
    }
    let dir = golden_dir(VERSION);
    for case in CASES {
        let file = case.file(&dir);
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (generate the fixtures once with RUSH_REGENERATE_GOLDEN=1)",
                file.display()
            )
        });
        check_fixture(case, &parse(&text));
    }
}

/// The test's own pieces: the format it reads is parsed right, and fresh records (of
/// whatever version this build writes) have the same shape as the fixtures.
#[test]
fn fixture_format_round_trips_and_fresh_records_match() {
    assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
    for case in CASES {
        let records = generate(case);
        assert_eq!(parse(&render(case, &records)), records, "{}", case.name);
        if records[0].1[0] == VERSION {
            check_fixture(case, &records);
        }
    }
}
