//! `rush reindex` on a folder holding format-v1 events (the golden v1 fixture, written
//! into the sled database as it was stored) beside format-v2 events.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;

use cli::{Db, create, rush, write};
use rush::store::WriteOp;

/// The records of `rush-store/tests/golden/v1/plain.records`: entity "golden"/"plain",
/// events 1..=10 and two snapshots, written by format v1 (no log entries).
fn v1_records() -> Vec<(Vec<u8>, Vec<u8>)> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rush-store/tests/golden/v1/plain.records"
    );
    let unhex = |text: &str| -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    };
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (key, value) = line.split_once(' ').unwrap();
            (unhex(key), unhex(value.trim()))
        })
        .collect()
}

/// `create`'s v2 events (accounts: alice 1..=4, bob 1, with offsets 1..=5) and the v1
/// fixture, with `damage` applied to each v1 record.
fn upgraded(damage: impl Fn(&[u8], &mut Vec<u8>)) -> Db {
    let db = create(None);
    let ops = v1_records()
        .into_iter()
        .map(|(key, mut value)| {
            damage(&key, &mut value);
            WriteOp::Put { key, value }
        })
        .collect();
    write(&db.path, ops);
    db
}

#[test]
fn reindex_gives_v1_events_offsets_once() {
    let db = upgraded(|_, _| {});
    let run = rush(&db.path, &["reindex"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("collection \"golden\": 10 events got offsets 1..=10"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "indexed 10 events in 1 collections; 5 already had offsets; 0 could not be read"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("before projections start"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("\"accounts\""),
        "nothing to do there: {}",
        run.stdout
    );

    // The log entries are sound: verify checks that each points at a stored event.
    let verify = rush(&db.path, &["verify"], &[]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert!(
        verify.stdout.contains("15 log entries"),
        "{}",
        verify.stdout
    );
    let list = rush(&db.path, &["list"], &[]);
    assert!(list.stdout.contains("golden"), "{}", list.stdout);

    let again = rush(&db.path, &["reindex"], &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("indexed 0 events in 0 collections; 15 already had offsets"),
        "{}",
        again.stdout
    );
    assert!(
        !again.stdout.contains("note:"),
        "no note when nothing changed: {}",
        again.stdout
    );
}

#[test]
fn reindex_leaves_damaged_events_out_and_exits_1() {
    // Event 10's CRC no longer matches.
    let db = upgraded(|key, value| {
        if key[0] == 1 && key.ends_with(&10u64.to_be_bytes()) {
            let last = value.len() - 1;
            value[last] ^= 1;
        }
    });
    let run = rush(&db.path, &["reindex"], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("collection \"golden\": 9 events got offsets 1..=9"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("not indexed: event 10 of \"golden\"/\"plain\""),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("1 damaged events"), "{run:?}");
}
