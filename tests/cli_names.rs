//! Collection and entity ids may hold any character, NUL and newlines included. Every
//! command prints them escaped as Rust's `{:?}` does (without the quotes in `list`'s
//! table), and takes them back in the same form, so that what `list` prints can be pasted
//! into `events`, `verify` and `delete-to`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;

use cli::{Account, Event, release, rush};
use rush::Store;
use rush::store::SledManager;
use std::path::PathBuf;
use std::sync::Arc;

const COLLECTION: &str = "odd\0coll\nname";
const ENTITY: &str = "ent\0\nid";
/// How both are printed, and typed back.
const COLLECTION_ESCAPED: &str = r"odd\0coll\nname";
const ENTITY_ESCAPED: &str = r"ent\0\nid";
/// A collection with a backslash and a bell in its name.
const BACKSLASH: &str = "back\\slash\x07";
const BACKSLASH_ESCAPED: &str = r"back\\slash\u{7}";

/// One event in (COLLECTION, ENTITY), two in (BACKSLASH, "b").
fn odd_names() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let manager = Arc::new(SledManager::new(&path).unwrap());
        let mut odd =
            Store::<Account>::new(COLLECTION, ENTITY, manager.clone(), None, true).unwrap();
        odd.persist(&Event::Deposited(3)).unwrap();
        let mut other = Store::<Account>::new(BACKSLASH, "b", manager, None, true).unwrap();
        other
            .persist_batch(&[Event::Deposited(1), Event::Deposited(2)])
            .unwrap();
    }
    release(&path);
    (dir, path)
}

/// No raw control character in the output, line ends aside.
fn assert_printable(what: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what} printed a raw control character: {text:?}"
    );
}

#[test]
fn names_with_control_characters_are_printed_escaped_by_every_command() {
    let (_dir, path) = odd_names();
    let list = rush(&path, &["list"], &[]);
    assert_eq!(list.code, 0, "{list:?}");
    assert_printable("list", &list.stdout);
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(COLLECTION_ESCAPED))
        .unwrap_or_else(|| panic!("no escaped row:\n{}", list.stdout));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..3],
        [COLLECTION_ESCAPED, ENTITY_ESCAPED, "1"],
        "{row}"
    );
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with(BACKSLASH_ESCAPED)),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout
            .contains(&format!("collection \"{COLLECTION_ESCAPED}\": 1 entities")),
        "{}",
        list.stdout
    );
    assert_eq!(
        list.stdout.lines().count(),
        3 + 1 + 2 + 1,
        "header, 2 rows, a blank line, 2 collections, a total:\n{}",
        list.stdout
    );

    for args in [&["verify"][..], &["stats"][..]] {
        let run = rush(&path, args, &[]);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        assert_printable(args[0], &run.stdout);
    }
}

#[test]
fn names_are_typed_back_in_the_form_list_prints_them() {
    let (_dir, path) = odd_names();
    let events = rush(&path, &["events", COLLECTION_ESCAPED, ENTITY_ESCAPED], &[]);
    assert_eq!(events.code, 0, "{events:?}");
    assert_eq!(events.json_lines().len(), 1, "{events:?}");

    let verify = rush(&path, &["verify", COLLECTION_ESCAPED, ENTITY_ESCAPED], &[]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert!(verify.stdout.contains("checked 1 events"), "{verify:?}");

    let backslash = rush(&path, &["events", BACKSLASH_ESCAPED, "b"], &[]);
    assert_eq!(backslash.code, 0, "{backslash:?}");
    assert_eq!(backslash.json_lines().len(), 2, "{backslash:?}");
    // `\x07` is accepted too, as a shorter way to write a control character.
    let hex = rush(&path, &["verify", r"back\\slash\x07"], &[]);
    assert_eq!(hex.code, 0, "{hex:?}");

    // An unknown name is quoted back escaped.
    let unknown = rush(&path, &["events", r"odd\0coll", ENTITY_ESCAPED], &[]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains(r#"in collection "odd\0coll" (no events"#),
        "{unknown:?}"
    );
    assert_printable("an error", &unknown.stderr);

    // A backslash that starts no escape is refused, not guessed at.
    let invalid = rush(&path, &["events", r"odd\qname", "x"], &[]);
    assert_eq!(invalid.code, 2, "{invalid:?}");
    assert!(invalid.stderr.contains(r"\q"), "{invalid:?}");
    assert!(invalid.stderr.contains(r"\\"), "{invalid:?}");
}

#[test]
fn help_documents_the_escapes() {
    let run = rush(std::path::Path::new("unused"), &["--help"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    for escape in [r"\0", r"\n", r"\\", r"\x07", r"\u{7}"] {
        assert!(run.stdout.contains(escape), "{escape}: {}", run.stdout);
    }
}
