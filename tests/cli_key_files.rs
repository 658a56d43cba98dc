//! Key files as people write them: the 32 raw bytes, 64 hex digits with or without a
//! newline, and `xxd -p`'s two-line layout open the database; a raw key with a trailing
//! newline or of the wrong length is refused with a message that counts bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;

use cli::{KEY, create, hex, rush};

/// Writes `contents` to a file beside the database; returns its path.
fn write_key_file(db: &cli::Db, name: &str, contents: &[u8]) -> String {
    let file = db.path.with_file_name(name);
    std::fs::write(&file, contents).unwrap();
    file.to_string_lossy().into_owned()
}

#[test]
fn a_key_file_in_every_usual_layout_opens_the_database() {
    let db = create(Some(&KEY));
    let digits = hex(&KEY);
    // `head -c 32 /dev/urandom | xxd -p`: 60 digits, a newline, 4 digits, a newline.
    let xxd = format!("{}\n{}\n", &digits[..60], &digits[60..]);
    let layouts: [(&str, Vec<u8>); 5] = [
        ("raw.key", KEY.to_vec()),
        ("hex.key", digits.clone().into_bytes()),
        ("hex-newline.key", format!("{digits}\n").into_bytes()),
        (
            "crlf.key",
            format!("  {}\r\n", digits.to_uppercase()).into_bytes(),
        ),
        ("xxd.key", xxd.into_bytes()),
    ];
    for (name, contents) in layouts {
        let file = write_key_file(&db, name, &contents);
        let run = rush(&db.path, &["verify", "--key-file", &file], &[]);
        assert_eq!(run.code, 0, "{name}: {run:?}");
    }
}

#[test]
fn a_raw_key_with_a_trailing_newline_is_refused_in_bytes() {
    let db = create(Some(&KEY));
    let mut contents = KEY.to_vec();
    contents.push(b'\n');
    let file = write_key_file(&db, "newline.key", &contents);
    let run = rush(&db.path, &["list", "--key-file", &file], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("33 bytes"), "{run:?}");
    assert!(run.stderr.contains("newline"), "{run:?}");
    assert!(!run.stderr.contains("characters"), "{run:?}");
}

#[test]
fn a_raw_key_of_the_wrong_length_is_refused_in_bytes() {
    let db = create(Some(&KEY));
    let file = write_key_file(&db, "short.key", &[0xfe; 31]);
    let run = rush(&db.path, &["list", "--key-file", &file], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("holds 31 bytes"), "{run:?}");
    assert!(!run.stderr.contains("characters"), "{run:?}");
}

#[test]
fn a_hex_key_of_the_wrong_length_counts_its_digits() {
    let db = create(Some(&KEY));
    let file = write_key_file(&db, "hex62.key", &hex(&KEY).as_bytes()[..62]);
    let run = rush(&db.path, &["list", "--key-file", &file], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("62 characters found, expected 64 hex digits"),
        "{run:?}"
    );
}
