//! `rush verify` keeps its output bounded when the same problem repeats on every record:
//! with only the new key of an unfinished rotation it prints the first failures, counts
//! the rest by kind and says to give the old key too; a key given for a database that is
//! not encrypted is said once, not once per record.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;

use cli::{Account, Event, KEY, NEW_KEY, create, hex, key_file, release, rush};
use rush::Store;
use rush::store::SledManager;
use std::sync::Arc;

/// [`create`]'s database sealed with `KEY` (7 records), 20 more entities sealed with
/// `KEY`, and entity "a" sealed with `NEW_KEY`: its event sorts first, as a rotation
/// that stopped after its first page leaves it.
fn mid_rotation() -> cli::Db {
    let db = create(Some(&KEY));
    {
        let manager = Arc::new(SledManager::new(&db.path).unwrap());
        let mut first =
            Store::<Account>::new("accounts", "a", manager.clone(), Some(&NEW_KEY[..]), true)
                .unwrap();
        first.persist(&Event::Deposited(1)).unwrap();
        for n in 0..20 {
            let id = format!("x{n:02}");
            let mut store =
                Store::<Account>::new("accounts", &id, manager.clone(), Some(&KEY[..]), true)
                    .unwrap();
            store.persist(&Event::Deposited(n)).unwrap();
        }
    }
    release(&db.path);
    db
}

#[test]
fn verify_with_only_the_new_key_of_an_unfinished_rotation_prints_a_bounded_summary() {
    let db = mid_rotation();
    let new = key_file(&db, "new.key", &NEW_KEY);
    let run = rush(&db.path, &["verify", "--key-file", &new], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 11, "10 failures and a count:\n{}", run.stdout);
    assert!(
        errors[10].starts_with("error: 17 more errors not shown: 17 records sealed with key id "),
        "the rest counted by kind:\n{}",
        run.stdout
    );
    let hint = lines.iter().find(|l| l.starts_with("hint: ")).unwrap();
    assert!(
        hint.contains("27 records are sealed with key id")
            && hint.contains("mid-rotation")
            && hint.contains("--old-key-file"),
        "the hint:\n{}",
        run.stdout
    );
    assert_eq!(lines.len(), 13, "bounded:\n{}", run.stdout);
    assert!(
        run.stdout.contains(": 27 errors, 0 warnings"),
        "the totals count everything:\n{}",
        run.stdout
    );

    // With both keys it is clean.
    let old = key_file(&db, "old.key", &KEY);
    let both = rush(
        &db.path,
        &["verify", "--key-file", &new, "--old-key-file", &old],
        &[],
    );
    assert_eq!(both.code, 0, "{both:?}");
}

#[test]
fn a_key_given_for_a_plain_database_is_warned_about_once() {
    let db = create(None);
    let run = rush(&db.path, &["verify"], &[("RUSH_KEY", hex(&KEY))]);
    assert_eq!(run.code, 0, "{run:?}");
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "once per run:\n{}", run.stdout);
    assert!(
        warnings[0].contains("none of the 7 records is encrypted although a key was given"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(": 0 errors, 7 warnings"),
        "the totals count every record:\n{}",
        run.stdout
    );
}

#[test]
fn plain_records_beside_encrypted_ones_are_counted_on_one_line() {
    let db = create(None);
    {
        let manager = Arc::new(SledManager::new(&db.path).unwrap());
        let mut sealed =
            Store::<Account>::new("accounts", "a", manager, Some(&KEY[..]), true).unwrap();
        sealed.persist(&Event::Deposited(1)).unwrap();
    }
    release(&db.path);
    let run = rush(&db.path, &["verify"], &[("RUSH_KEY", hex(&KEY))]);
    assert_eq!(run.code, 0, "{run:?}");
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "once per run:\n{}", run.stdout);
    assert!(
        warnings[0].contains(
            "7 of the 8 records are not encrypted although a key was given (the first: event 1 of \"accounts\"/\"bob\")"
        ),
        "{}",
        run.stdout
    );
}
