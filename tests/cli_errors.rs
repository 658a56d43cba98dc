//! Clear one-line errors and exit codes: a missing folder (not created), a folder that is
//! not a database, a database in use by another process, a wrong or malformed key, and a
//! damaged record found by `verify` and `events`, and a collection or entity that does not
//! exist.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;

use cli::{KEY, create, event_key, hex, key_file, read, rush, write};
use rush::store::{SledManager, WriteOp};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn a_missing_folder_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-db");
    let run = rush(&missing, &["list"], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("the folder does not exist"), "{run:?}");
    assert!(!missing.exists());
}

#[test]
fn a_folder_that_is_not_a_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let run = rush(dir.path(), &["verify"], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("holds no Rush database"), "{run:?}");
    assert!(!dir.path().join("db").exists(), "nothing was created");
}

/// Not a test on its own: the child process of `a_database_in_use_is_an_error`, which
/// holds the database open until its stdin closes.
#[test]
fn hold_database_open_for_another_test() {
    let Ok(path) = std::env::var("RUSH_CLI_TEST_HOLD") else {
        return;
    };
    let _manager = SledManager::new(&path).unwrap();
    println!("holding");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn a_database_in_use_is_an_error() {
    let db = create(None);
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "hold_database_open_for_another_test",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RUSH_CLI_TEST_HOLD", &db.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().contains("holding")),
        "the holder never opened the database"
    );
    let run = rush(&db.path, &["list"], &[]);
    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.contains("is in use by another process"),
        "{run:?}"
    );
}

#[test]
fn a_wrong_or_malformed_key_is_an_error() {
    let db = create(Some(&KEY));
    let wrong = key_file(&db, "wrong.key", &[9; 32]);
    let run = rush(
        &db.path,
        &["events", "accounts", "alice", "--key-file", &wrong],
        &[],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("wrong key?"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");

    let short = rush(&db.path, &["list"], &[("RUSH_KEY", "abcd".to_owned())]);
    assert_eq!(short.code, 2, "{short:?}");
    assert!(
        short
            .stderr
            .contains("RUSH_KEY: 4 hex digits found, expected 64 hex digits"),
        "{short:?}"
    );
}

#[test]
fn a_flipped_byte_makes_verify_and_events_exit_one() {
    let db = create(Some(&KEY));
    let key = event_key("accounts", "alice", 2);
    let mut record = read(&db.path, &key).unwrap();
    let last = record.len() - 1;
    record[last] ^= 0x40;
    write(&db.path, vec![WriteOp::Put { key, value: record }]);

    let env = [("RUSH_KEY", hex(&KEY))];
    let run = rush(&db.path, &["verify"], &env);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(
            "error: event 2 of \"accounts\"/\"alice\": authentication tag does not verify"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(": 1 errors, 0 warnings"),
        "{}",
        run.stdout
    );

    let events = rush(&db.path, &["events", "accounts", "alice"], &env);
    assert_eq!(events.code, 1, "{events:?}");
    let lines = events.json_lines();
    assert_eq!(lines.len(), 4, "the other events are still printed");
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("authentication tag"),
        "{}",
        lines[1]
    );

    let other = rush(&db.path, &["verify", "accounts", "bob"], &env);
    assert_eq!(other.code, 0, "{other:?}");
}

#[test]
fn an_unknown_collection_or_entity_is_an_error_not_an_empty_result() {
    let db = create(None);
    for args in [
        &["events", "accounts", "alcie"][..],
        &["events", "acounts", "alice"][..],
        &["verify", "accounts", "alcie"][..],
        &["verify", "acounts"][..],
    ] {
        let run = rush(&db.path, args, &[]);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("`list` shows what there is"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // An entity past its last event is not unknown: nothing to print, exit 0.
    let run = rush(&db.path, &["events", "accounts", "bob", "--from", "9"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
}
