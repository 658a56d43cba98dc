//! What the golden-format tests of every format version share: the fixed test types and
//! script, the four cases, the fixture file format, and byte-level checks written from
//! FORMAT.md (not from the implementation).
//!
//! Never change the types, the script or the values below: the fixtures in
//! `tests/golden/v*/` hold them as bincode, and the tests compare against them.
#![allow(dead_code)]

#[path = "golden_store.rs"]
mod store_checks;
// Not every test that includes this module checks through the store.
#[allow(unused_imports)]
pub use store_checks::check_through_store;

use rush_store::{
    Backend, EncryptionKey, Error, MemoryManager, PersistentActor, Store, WriteBatch, WriteOp,
};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// ------------------------------------------------------------------ the fixed test types

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GoldenEvent {
    Renamed(String),
    Recorded {
        label: String,
        count: u64,
        weight: f64,
    },
    Cleared,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenState {
    pub name: String,
    pub total: u64,
    pub weight: f64,
    pub labels: Vec<String>,
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

    // Part of the v2 fixtures (v1 records carry no tags whatever this says).
    fn event_tags(event: &GoldenEvent) -> Vec<String> {
        golden_tags(event)
    }
}

/// The tags the v2 fixtures carry: "identity" on renames, "recorded" (and "large" from
/// a count of 100) on records, none on clears.
pub fn golden_tags(event: &GoldenEvent) -> Vec<String> {
    match event {
        GoldenEvent::Renamed(_) => vec!["identity".into()],
        GoldenEvent::Recorded { count, .. } if *count >= 100 => {
            vec!["recorded".into(), "large".into()]
        }
        GoldenEvent::Recorded { .. } => vec!["recorded".into()],
        GoldenEvent::Cleared => Vec::new(),
    }
}

pub const COLLECTION: &str = "golden";
/// The fixed test key of the encrypted fixtures (exactly 32 bytes).
pub const KEY: &[u8; 32] = b"rush-store golden test key v1!!!";
pub const HEADER_LEN: usize = 20;
pub const CRC_LEN: usize = 4;
pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
pub const FLAG_COMPRESSED: u8 = 0b01;
pub const FLAG_ENCRYPTED: u8 = 0b10;
pub const KIND_EVENT: u8 = 1;
pub const KIND_SNAPSHOT: u8 = 2;
pub const KIND_LOG_ENTRY: u8 = 5;
pub const KIND_TABLE_ROW: u8 = 6;
/// Snapshots are taken after these sequence numbers.
pub const SNAPSHOT_AT: [u64; 2] = [3, 7];

/// More than 128 bytes and repetitive: stored compressed when compression is on.
pub fn long_label() -> String {
    "the quick brown fox jumps over the lazy dog; ".repeat(6)
}

/// The events of every fixture, in order, as they were persisted: `(batch, events)`.
pub fn script() -> Vec<Vec<GoldenEvent>> {
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

pub fn expected_events() -> Vec<GoldenEvent> {
    script().into_iter().flatten().collect()
}

pub fn state_after(events: &[GoldenEvent]) -> GoldenState {
    let mut state = GoldenState::default();
    for event in events {
        state.apply(event);
    }
    state
}

/// One fixture: an entity written with or without compression and encryption.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub compressed: bool,
    pub encrypted: bool,
}

pub const CASES: [Case; 4] = [
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
    pub fn entity(self) -> &'static str {
        self.name
    }

    pub fn key(self) -> Option<&'static [u8]> {
        self.encrypted.then_some(KEY.as_slice())
    }

    pub fn file(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.records", self.name))
    }

    pub fn open(self, manager: MemoryManager) -> Store<GoldenState> {
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
    pub fn encoded_ids(self) -> Vec<u8> {
        let mut out = Vec::new();
        for id in [COLLECTION, self.entity()] {
            out.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
            out.extend_from_slice(id.as_bytes());
        }
        out
    }

    pub fn record_key(self, kind: u8, seq: Option<u64>) -> Vec<u8> {
        let mut key = vec![kind];
        key.extend_from_slice(&self.encoded_ids());
        if let Some(seq) = seq {
            key.extend_from_slice(&seq.to_be_bytes());
        }
        key
    }
}

/// `[kind][u16 len][name]`: the start of a collection's log or of a table's rows.
pub fn name_prefix(kind: u8, name: &str) -> Vec<u8> {
    let mut key = vec![kind];
    key.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
    key.extend_from_slice(name.as_bytes());
    key
}

pub fn golden_dir(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(folder)
}

/// Whether this run should write fixtures that do not exist yet.
pub fn regenerating() -> bool {
    std::env::var("RUSH_REGENERATE_GOLDEN").as_deref() == Ok("1")
}

/// Writes `text` to `file`, which must not exist: fixtures are never regenerated.
pub fn write_new_fixture(file: &Path, text: &str) {
    use std::io::Write as _;
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // create_new: an existing file is never truncated, even by a concurrent writer.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: fixtures are never regenerated \
                 (delete it by hand only if it was never committed)",
                file.display()
            )
        });
    out.write_all(text.as_bytes()).unwrap();
    out.sync_all().unwrap();
}

pub fn read_fixture(file: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (generate the fixtures once with RUSH_REGENERATE_GOLDEN=1)",
            file.display()
        )
    });
    parse(&text)
}

// ------------------------------------------------------------------ fixture files

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(out, "{b:02x}").unwrap();
    }
    out
}

pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length: {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `comments` as `#` lines, then one record per line: `hex(key) hex(value)`, in key order.
pub fn render(comments: &[String], records: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut out = String::new();
    for comment in comments {
        writeln!(out, "# {comment}").unwrap();
    }
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

/// The comment lines of a case's fixture of format `version`, written by `generator`.
pub fn case_comments(case: Case, version: u8, generator: &str) -> Vec<String> {
    vec![
        format!("rush-store golden records, format v{version}"),
        format!(
            "case {:?}: collection {COLLECTION:?}, entity {:?}, compression {}, encryption {}",
            case.name,
            case.entity(),
            if case.compressed { "on" } else { "off" },
            if case.encrypted {
                "with the 32-byte ASCII key \"rush-store golden test key v1!!!\""
            } else {
                "off"
            },
        ),
        format!("written by {generator} with RUSH_REGENERATE_GOLDEN=1; never edit or regenerate"),
    ]
}

pub fn parse(text: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
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
pub fn dump(manager: &MemoryManager) -> Vec<(Vec<u8>, Vec<u8>)> {
    manager.scan(&[], &[0xff], usize::MAX, false).unwrap()
}

/// A fresh memory database holding exactly `records` (plain puts: log entries keep the
/// offsets they were stored at).
pub fn load(records: &[(Vec<u8>, Vec<u8>)]) -> MemoryManager {
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

// ------------------------------------------------------------------ byte-level checks

/// CRC-32 (IEEE, reflected, as crc32fast and zlib): written here from its definition so
/// the test does not share code with the implementation it checks.
pub fn crc32(parts: &[&[u8]]) -> u32 {
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

/// The header of a record, field by field, as FORMAT.md lays it out (big-endian).
pub struct Header {
    pub version: u8,
    pub flags: u8,
    pub codec: u8,
    pub reserved: u8,
    pub key_id: u32,
    pub timestamp_micros: u64,
    pub body_len: usize,
}

pub fn header(record: &[u8]) -> Header {
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

/// The keys of a case's journal, in order: its events, then its snapshots.
pub fn journal_keys(case: Case) -> Vec<Vec<u8>> {
    let head = expected_events().len() as u64;
    let mut keys: Vec<Vec<u8>> = (1..=head)
        .map(|seq| case.record_key(KIND_EVENT, Some(seq)))
        .collect();
    keys.extend(
        SNAPSHOT_AT
            .iter()
            .map(|seq| case.record_key(KIND_SNAPSHOT, Some(*seq))),
    );
    keys
}

/// The plaintext body of a version-1 or -2 record (20-byte header) that is not encrypted,
/// gunzipped when compressed.
pub fn plain_body(record: &[u8]) -> Vec<u8> {
    let h = header(record);
    gunzip_if_compressed(h.flags, &record[HEADER_LEN..HEADER_LEN + h.body_len])
}

/// `body` as stored, gunzipped when `flags` say it is compressed.
pub fn gunzip_if_compressed(flags: u8, body: &[u8]) -> Vec<u8> {
    if flags & FLAG_COMPRESSED == 0 {
        return body.to_vec();
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).unwrap();
    out
}

/// The timestamp in a record's header, of any format version: at bytes 8..16 in versions
/// 1 and 2; in version 3 after the version, the flags and (when encrypted) the key id.
pub fn record_timestamp(record: &[u8]) -> u64 {
    let at = match (record[0], record[1] & FLAG_ENCRYPTED != 0) {
        (3, true) => 6,
        (3, false) => 2,
        _ => 8,
    };
    u64::from_be_bytes(record[at..at + 8].try_into().unwrap())
}

/// Byte-level facts of one sealed record (event, snapshot, table row) of a case whose
/// records have version byte `version`; returns its flags.
pub fn check_record(case: Case, version: u8, key: &[u8], record: &[u8]) -> u8 {
    check_sealed(
        case.name,
        case.encrypted,
        case.compressed,
        version,
        key,
        record,
    )
}

/// [`check_record`] without a case: `may_compress` false means the flag must be clear.
pub fn check_sealed(
    name: &str,
    encrypted: bool,
    may_compress: bool,
    version: u8,
    key: &[u8],
    record: &[u8],
) -> u8 {
    let h = header(record);
    let what = format!("{name}: record {}", hex(key));
    assert_eq!(h.version, version, "{what}: version byte");
    assert_eq!(h.codec, 1, "{what}: codec byte (bincode)");
    assert_eq!(h.reserved, 0, "{what}: reserved byte");
    assert_eq!(
        h.flags & !(FLAG_COMPRESSED | FLAG_ENCRYPTED),
        0,
        "{what}: unknown flags"
    );
    assert_eq!(
        h.flags & FLAG_ENCRYPTED != 0,
        encrypted,
        "{what}: encrypted flag"
    );
    if !may_compress {
        assert_eq!(h.flags & FLAG_COMPRESSED, 0, "{what}: compressed flag");
    }
    let body = &record[HEADER_LEN..HEADER_LEN + h.body_len];
    if encrypted {
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

/// Each fixture holds the kinds of record it is meant to cover.
pub fn check_flags_covered(case: Case, flags_seen: &[u8]) {
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
}
