//! `rush rotate-key`, `delete-to` and `compact` on real folders, checked afterwards by
//! the binary itself (`verify`, `events`, `list`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;

use cli::{KEY, NEW_KEY, create, hex, key_file, rush, write};
use rush::store::WriteOp;

#[test]
fn rotate_key_then_the_new_key_alone_reads_everything() {
    let db = create(Some(&KEY));
    let old = key_file(&db, "old.key", &KEY);
    let new = key_file(&db, "new.key", &NEW_KEY);
    let run = rush(
        &db.path,
        &["rotate-key", "--key-file", &old, "--new-key-file", &new],
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("re-encrypted 7 records"),
        "{}",
        run.stdout
    );

    let verify = rush(&db.path, &["verify", "--key-file", &new], &[]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert!(
        verify.stdout.contains("1 table rows: 0 errors, 0 warnings"),
        "{}",
        verify.stdout
    );
    let events = rush(
        &db.path,
        &["events", "accounts", "alice", "--key-file", &new],
        &[],
    );
    assert_eq!(events.code, 0, "{events:?}");
    assert_eq!(events.json_lines()[3]["event_type"], "Noted");

    let stale = rush(&db.path, &["list", "--key-file", &old], &[]);
    assert_eq!(stale.code, 2, "{stale:?}");
    assert!(stale.stderr.contains("wrong key?"), "{stale:?}");

    // Running it again finds nothing left to do.
    let again = rush(
        &db.path,
        &["rotate-key"],
        &[("RUSH_KEY", hex(&NEW_KEY)), ("RUSH_NEW_KEY", hex(&NEW_KEY))],
    );
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("re-encrypted 0 records"),
        "{}",
        again.stdout
    );
}

#[test]
fn rotate_key_encrypts_a_plain_database_and_needs_a_new_key() {
    let db = create(None);
    let missing = rush(&db.path, &["rotate-key"], &[]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("needs the new key"), "{missing:?}");

    let run = rush(
        &db.path,
        &["rotate-key"],
        &[("RUSH_NEW_KEY", hex(&NEW_KEY))],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let events = rush(
        &db.path,
        &["events", "accounts", "bob"],
        &[("RUSH_KEY", hex(&NEW_KEY))],
    );
    let line = &events.json_lines()[0];
    assert_eq!(
        (line["encrypted"].as_bool(), line["event_type"].as_str()),
        (Some(true), Some("Deposited"))
    );
}

#[test]
fn delete_to_refuses_without_a_covering_snapshot_and_deletes_with_one() {
    let db = create(None);
    let refused = rush(&db.path, &["delete-to", "accounts", "bob", "1"], &[]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("the newest snapshot covers only up to 0"),
        "{refused:?}"
    );
    let beyond = rush(&db.path, &["delete-to", "accounts", "alice", "4"], &[]);
    assert_eq!(beyond.code, 2, "{beyond:?}");

    let run = rush(&db.path, &["delete-to", "accounts", "alice", "3"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("deleted 3 events"), "{}", run.stdout);
    let list = rush(&db.path, &["list"], &[]);
    let alice = list
        .stdout
        .lines()
        .find(|l| l.contains("alice"))
        .unwrap()
        .to_owned();
    let cells: Vec<&str> = alice.split_whitespace().collect();
    assert_eq!(
        (cells[2], cells[3], cells[4], cells.last().copied()),
        ("1", "4..=4", "4", Some("3")),
        "{alice}"
    );
    let verify = rush(&db.path, &["verify"], &[]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert!(
        verify.stdout.contains("0 errors, 0 warnings"),
        "{}",
        verify.stdout
    );
}

#[test]
fn compact_removes_events_an_interrupted_deletion_left_below_its_mark() {
    let db = create(None);
    // What a deletion interrupted after its first batch leaves: the mark, events below it.
    let mut mark_key = vec![4u8];
    for id in ["accounts", "alice"] {
        mark_key.extend_from_slice(&(id.len() as u16).to_be_bytes());
        mark_key.extend_from_slice(id.as_bytes());
    }
    write(
        &db.path,
        vec![WriteOp::Put {
            key: mark_key,
            value: 2u64.to_be_bytes().to_vec(),
        }],
    );
    let before = rush(&db.path, &["verify"], &[]);
    assert_eq!(before.code, 0, "warnings only: {before:?}");
    assert!(
        before.stdout.contains("0 errors, 2 warnings"),
        "{}",
        before.stdout
    );

    let run = rush(&db.path, &["compact"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("removed 2 events left below the deletion marks of 1 entities"),
        "{}",
        run.stdout
    );
    let after = rush(&db.path, &["verify"], &[]);
    assert!(
        after.stdout.contains("0 errors, 0 warnings"),
        "{}",
        after.stdout
    );
    let events = rush(&db.path, &["events", "accounts", "alice"], &[]);
    assert_eq!(events.json_lines()[0]["seq"], 3);
}
