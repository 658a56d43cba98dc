//! The fuzz corpora (`fuzz/corpus/<target>/`) replayed as a regular test, through the same
//! entry points as the `cargo fuzz` targets (`rush_store::fuzzing`): every input must give
//! a result (no panic) within a time bound; inputs named `valid-*` must decode and inputs
//! named `bomb-*` (gzip bombs) must be refused.
//!
//! The seeds are generated, not hand-written: `RUSH_REGENERATE_CORPUS=1 cargo test -p
//! rush-store --test fuzz_corpus` rewrites the `seed-*`, `valid-*` and `bomb-*` files from
//! the golden records, fresh records and hostile variants of them. Files that `cargo fuzz`
//! adds (named by their hash) are kept and replayed too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rush_store::fuzzing::{self, FUZZ_KEY, FuzzEvent, INFLATE_LIMIT, join_input, split_input};
use rush_store::{Backend, MemoryManager, PersistentActor, Store};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The targets, as named in `fuzz/fuzz_targets/`.
const TARGETS: [&str; 4] = ["envelope", "decrypt", "inflate", "log_block"];
/// Debug builds inflate a bounded bomb in well under this.
const PER_INPUT: Duration = Duration::from_secs(2);

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

/// What a target does with one input, as the fuzz target does it. `Ok` means "decoded".
fn run(target: &str, data: &[u8]) -> Result<(), String> {
    match target {
        "envelope" => {
            let (identity, record) = split_input(data);
            let plain = fuzzing::decode_record(identity, record, None);
            let keyed = fuzzing::decode_record(identity, record, Some(FUZZ_KEY));
            match (plain, keyed) {
                (Ok(()), _) | (_, Ok(())) => Ok(()),
                (Err(e), _) => Err(e.to_string()),
            }
        }
        "decrypt" => {
            let (identity, record) = split_input(data);
            fuzzing::open_sealed(identity, record)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        "inflate" => fuzzing::inflate(data, INFLATE_LIMIT)
            .map(drop)
            .map_err(|e| e.to_string()),
        "log_block" => fuzzing::decode_log_block(data)
            .map(drop)
            .map_err(|e| e.to_string()),
        other => panic!("unknown target {other}"),
    }
}

#[test]
fn every_corpus_input_gives_a_result_in_time_valid_ones_decode_and_bombs_are_refused() {
    if std::env::var_os("RUSH_REGENERATE_CORPUS").is_some() {
        regenerate();
    }
    for target in TARGETS {
        let dir = corpus_dir().join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        let (mut valid, mut bombs) = (0, 0);
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(file).unwrap();
            let started = Instant::now();
            let outcome = run(target, &data);
            let took = started.elapsed();
            assert!(took < PER_INPUT, "{target}/{name} took {took:?}");
            if name.starts_with("valid-") {
                valid += 1;
                assert!(outcome.is_ok(), "{target}/{name}: {outcome:?}");
            }
            if name.starts_with("bomb-") {
                bombs += 1;
                let err = outcome.expect_err(&format!("{target}/{name}: a bomb was inflated"));
                assert!(err.contains("gzip"), "{target}/{name}: {err}");
            }
        }
        assert!(valid >= 1, "{target}: no valid seed");
        if target == "inflate" || target == "envelope" {
            assert!(bombs >= 1, "{target}: no gzip bomb");
        }
        println!(
            "{target}: {} inputs, {valid} valid, {bombs} bombs",
            files.len()
        );
    }
}

// ------------------------------------------------------------------ corpus generation

/// Entity type for fresh records.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Fuzzed(u64);

impl PersistentActor for Fuzzed {
    type Event = FuzzEvent;
    fn apply(&mut self, _: &FuzzEvent) {
        self.0 += 1;
    }
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = corpus_dir().join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

/// Stored entries: (key, value).
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// `hex(key) hex(value)` lines of a golden file (`file` in `tests/golden/`).
fn golden(file: &str) -> Entries {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (hex(k), hex(v))
        })
        .collect()
}

/// Fresh event records of `FuzzEvent` (format v3), keyed or not, compressed when it pays,
/// and the collection-log blocks written with them.
fn fresh(key: Option<&[u8]>) -> (Entries, Entries) {
    let memory = MemoryManager::default();
    let mut store = Store::<Fuzzed>::new("fuzz", "f-1", memory.clone(), key, true).unwrap();
    store
        .persist_batch(&[
            FuzzEvent::Named("short".into(), 7),
            FuzzEvent::Data(vec![1, 2, 3], Some(0.5)),
        ])
        .unwrap();
    store
        .persist(&FuzzEvent::Named(
            "long and repetitive ".repeat(20),
            u64::MAX,
        ))
        .unwrap();
    store.persist(&FuzzEvent::Empty).unwrap();
    let events = memory.scan(&[1], &[2], usize::MAX, false).unwrap();
    let blocks = memory.scan(&[5], &[6], usize::MAX, false).unwrap();
    (events, blocks)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A plain record (CRC trailer) with any header fields, so hostile bodies still pass the
/// checksum and reach the inflate and decode steps.
fn plain_record(identity: &[u8], version: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![version, flags, 1, 0, 0, 0, 0, 0];
    out.extend_from_slice(&1_700_000_000_000_000u64.to_be_bytes());
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    with_crc(identity, out, body)
}

/// A plain format-v3 record: `[3][flags][timestamp u64][body][crc32]`.
fn plain_record_v3(identity: &[u8], flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![3, flags];
    out.extend_from_slice(&1_700_000_000_000_000u64.to_be_bytes());
    with_crc(identity, out, body)
}

/// `header ‖ body ‖ crc32(identity ‖ header ‖ body)`.
fn with_crc(identity: &[u8], mut out: Vec<u8>, body: &[u8]) -> Vec<u8> {
    out.extend_from_slice(body);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(identity);
    hasher.update(&out);
    out.extend_from_slice(&hasher.finalize().to_be_bytes());
    out
}

fn regenerate() {
    let golden_plain = golden("v1/compressed.records");
    let golden_sealed = golden("v1/compressed-encrypted.records");
    // Log blocks and entries of version 1, as builds before log blocks v2 wrote them.
    let blocks_v1: Entries = golden("v2/plain.records")
        .into_iter()
        .filter(|(key, _)| key[0] == 5)
        .take(3)
        .collect();
    let (fresh_plain, blocks) = fresh(None);
    let (fresh_sealed, _) = fresh(Some(FUZZ_KEY));
    let identity = fresh_plain[0].0.clone();

    // A bomb: 16 MiB of zeros in 16 KiB, honest trailer; and one whose trailer lies.
    let bomb = gzip(&vec![0u8; 16 * 1024 * 1024]);
    let mut liar = bomb.clone();
    let n = liar.len();
    liar[n - 4..].copy_from_slice(&100u32.to_le_bytes());

    // envelope
    for (i, (k, v)) in golden_plain.iter().chain(&golden_sealed).enumerate() {
        write(
            "envelope",
            &format!("seed-golden-{i:02}"),
            &join_input(k, v),
        );
    }
    for (i, (k, v)) in fresh_plain.iter().chain(&fresh_sealed).enumerate() {
        write(
            "envelope",
            &format!("valid-fresh-{i:02}"),
            &join_input(k, v),
        );
        write(
            "envelope",
            &format!("seed-truncated-{i:02}"),
            &join_input(k, &v[..v.len() / 2]),
        );
        let mut flipped = v.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        write(
            "envelope",
            &format!("seed-flipped-{i:02}"),
            &join_input(k, &flipped),
        );
    }
    // A v2 record's body length (bytes 16..20) claiming 4 GiB; v3 records have none.
    let golden_v2 = golden("v2/plain.records");
    let (k, v) = &golden_v2[0];
    let mut huge = v.clone();
    huge[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    write("envelope", "seed-huge-body-len", &join_input(k, &huge));
    write("envelope", "seed-empty", &[]);
    write("envelope", "seed-header-only", &join_input(k, &v[..20]));
    let (k, v) = &fresh_plain[0];
    write("envelope", "seed-v3-header-only", &join_input(k, &v[..10]));
    // v3 meta blocks: a type name longer than the body; 2^62 tags.
    write(
        "envelope",
        "seed-v3-type-past-body",
        &join_input(
            &identity,
            &plain_record_v3(&identity, 0, &[250, b'x', 1, 0]),
        ),
    );
    write(
        "envelope",
        "seed-v3-huge-tag-count",
        &join_input(
            &identity,
            &plain_record_v3(
                &identity,
                0,
                &[1, b'x', 1, 1, 253, 0, 0, 0, 0, 0, 0, 0, 0x40],
            ),
        ),
    );
    write(
        "envelope",
        "bomb-record-v3",
        &join_input(&identity, &plain_record_v3(&identity, 0b01, &bomb)),
    );
    write(
        "envelope",
        "bomb-record",
        &join_input(&identity, &plain_record(&identity, 2, 0b01, &bomb)),
    );
    write(
        "envelope",
        "bomb-record-lying-trailer",
        &join_input(&identity, &plain_record(&identity, 2, 0b01, &liar)),
    );
    let mut meta_bomb = u32::MAX.to_be_bytes().to_vec();
    meta_bomb.extend_from_slice(&[0; 16]);
    write(
        "envelope",
        "seed-huge-meta-len",
        &join_input(&identity, &plain_record(&identity, 2, 0, &meta_bomb)),
    );
    // bincode: a sequence that claims 2^62 elements.
    let mut huge_vec = 0u32.to_be_bytes().to_vec();
    huge_vec.extend_from_slice(&[1, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x40]);
    write(
        "envelope",
        "seed-huge-sequence",
        &join_input(&identity, &plain_record(&identity, 2, 0, &huge_vec)),
    );

    // decrypt
    for (i, (k, v)) in golden_sealed.iter().chain(&fresh_sealed).enumerate() {
        write(
            "decrypt",
            &format!("valid-sealed-{i:02}"),
            &join_input(k, v),
        );
        let mut tag = v.clone();
        let last = tag.len() - 1;
        tag[last] ^= 1;
        write(
            "decrypt",
            &format!("seed-bad-tag-{i:02}"),
            &join_input(k, &tag),
        );
        write(
            "decrypt",
            &format!("seed-truncated-{i:02}"),
            &join_input(k, &v[..v.len() - 7]),
        );
    }
    let (k, v) = &fresh_sealed[0];
    write("decrypt", "seed-moved", &join_input(&fresh_sealed[1].0, v));
    write(
        "decrypt",
        "seed-v3-no-room-for-tag",
        &join_input(k, &v[..14 + 12 + 3]),
    );
    let (k, v) = &golden_sealed[0];
    let mut huge = v.clone();
    huge[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    write("decrypt", "seed-huge-body-len", &join_input(k, &huge));
    write(
        "decrypt",
        "seed-plain-record",
        &join_input(k, &fresh_plain[0].1),
    );

    // inflate
    write(
        "inflate",
        "valid-text",
        &gzip(&b"event payload ".repeat(50)),
    );
    write("inflate", "valid-empty", &gzip(b""));
    write("inflate", "bomb-16mib-zeros", &bomb);
    write("inflate", "bomb-lying-trailer", &liar);
    write("inflate", "seed-truncated", &bomb[..bomb.len() / 3]);
    write(
        "inflate",
        "seed-garbage",
        b"\x1f\x8b\x08\x00this is not deflate at all",
    );

    // log_block: `[key len u8][key][block]`, since a block's CRC covers its key.
    let keyed = |key: &[u8], block: &[u8]| -> Vec<u8> {
        let mut input = vec![u8::try_from(key.len()).unwrap()];
        input.extend_from_slice(key);
        input.extend_from_slice(block);
        input
    };
    for (i, (key, block)) in blocks.iter().enumerate() {
        write(
            "log_block",
            &format!("valid-block-{i:02}"),
            &keyed(key, block),
        );
        write(
            "log_block",
            &format!("seed-truncated-{i:02}"),
            &keyed(key, &block[..block.len() - 3]),
        );
        let mut flipped = block.clone();
        flipped[6] ^= 0x10;
        write(
            "log_block",
            &format!("seed-flipped-{i:02}"),
            &keyed(key, &flipped),
        );
    }
    for (i, (key, block)) in blocks_v1.iter().enumerate() {
        write(
            "log_block",
            &format!("valid-v1-block-{i:02}"),
            &keyed(key, block),
        );
    }
    let key = &blocks[0].0;
    // Version 2: [2][count varint]([shared varint][suffix len varint][suffix])*[crc32].
    write(
        "log_block",
        "seed-v2-huge-count",
        &keyed(
            key,
            &[
                2, 253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
            ],
        ),
    );
    write(
        "log_block",
        "seed-v2-huge-suffix-len",
        &keyed(key, &[2, 1, 0, 252, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
    );
    write(
        "log_block",
        "seed-v2-shared-past-previous",
        &keyed(key, &[2, 2, 0, 1, b'a', 200, 1, b'b', 0, 0, 0, 0]),
    );
    write(
        "log_block",
        "seed-v2-non-minimal-varint",
        &keyed(key, &[2, 251, 1, 0, 0, 1, b'a', 0, 0, 0, 0]),
    );
    write(
        "log_block",
        "seed-huge-count",
        &keyed(key, &[1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
    );
    write(
        "log_block",
        "seed-huge-entry-len",
        &keyed(key, &[1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0]),
    );
    write(
        "log_block",
        "seed-bad-version",
        &keyed(key, &[9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    write(
        "log_block",
        "seed-short-entry",
        &keyed(key, &[1, 0, 0, 0, 1, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 0]),
    );
    write("log_block", "seed-key-longer-than-input", &[200, 1, 2, 3]);
}
