//! Key files as people write them: the 32 raw bytes, 64 hex digits with or without a
//! newline, and `xxd -p`'s two-line layout open the database; a raw key with a trailing
//! newline or of the wrong length is refused with a message that counts bytes, and hex of
//! the wrong length with one that counts hex digits.
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

/// `digits` split into lines of `per_line` digits, each ended by `ending`.
fn lines(digits: &str, per_line: usize, ending: &str) -> String {
    let chars: Vec<char> = digits.chars().collect();
    chars
        .chunks(per_line)
        .map(|line| format!("{}{ending}", line.iter().collect::<String>()))
        .collect()
}

#[test]
fn hex_split_over_lines_opens_the_database_and_other_lengths_are_refused() {
    let db = create(Some(&KEY));
    let digits = hex(&KEY);
    // `xxd -p -c 16`, `xxd -p -c 1`, `xxd -p` saved on Windows, `od -An -tx1` (spaces
    // between bytes), and `RUSH_KEY="$(xxd -p key)"`.
    for (name, contents) in [
        ("xxd-c16.key", lines(&digits, 32, "\n")),
        ("xxd-c1.key", lines(&digits, 2, "\n")),
        ("xxd-crlf.key", lines(&digits, 60, "\r\n")),
        ("od.key", format!(" {}\n", lines(&digits, 2, " "))),
    ] {
        let file = write_key_file(&db, name, contents.as_bytes());
        let run = rush(&db.path, &["verify", "--key-file", &file], &[]);
        assert_eq!(run.code, 0, "{name}: {run:?}");
    }
    let env = rush(
        &db.path,
        &["verify"],
        &[("RUSH_KEY", lines(&digits, 60, "\n"))],
    );
    assert_eq!(env.code, 0, "{env:?}");

    // 33 bytes and 31 bytes in the same layout are not a key.
    for (name, digits, found) in [
        ("long.key", format!("{digits}ab"), "66 hex digits found"),
        ("short.key", digits[..62].to_owned(), "62 hex digits found"),
    ] {
        let file = write_key_file(&db, name, lines(&digits, 60, "\n").as_bytes());
        let run = rush(&db.path, &["list", "--key-file", &file], &[]);
        assert_eq!(run.code, 2, "{name}: {run:?}");
        assert!(run.stderr.contains(found), "{name}: {run:?}");
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
    assert!(
        run.stderr
            .contains("holds 33 bytes: 32 raw key bytes followed by a newline"),
        "{run:?}"
    );
    assert!(run.stderr.contains("truncate -s 32"), "{run:?}");
    assert!(!run.stderr.contains("characters"), "{run:?}");

    contents.insert(32, b'\r');
    let file = write_key_file(&db, "crlf.key", &contents);
    let run = rush(&db.path, &["list", "--key-file", &file], &[]);
    assert!(
        run.stderr
            .contains("holds 34 bytes: 32 raw key bytes followed by a line ending (\\r\\n)"),
        "{run:?}"
    );
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
fn a_printable_raw_key_of_the_wrong_length_is_counted_in_bytes() {
    let db = create(Some(&KEY));
    // A passphrase-like raw key, one byte short: text, but not hex.
    let file = write_key_file(&db, "text31.key", b"correct-horse-battery-staple-31");
    let run = rush(&db.path, &["list", "--key-file", &file], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("holds 31 bytes, expected"), "{run:?}");
    assert!(!run.stderr.contains("characters"), "{run:?}");
}

#[test]
fn a_hex_key_with_a_0x_prefix_is_named_as_such() {
    let db = create(Some(&KEY));
    let file = write_key_file(&db, "0x.key", format!("0x{}\n", hex(&KEY)).as_bytes());
    let run = rush(&db.path, &["list", "--key-file", &file], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "starts with 0x followed by 64 hex digits: write the hex digits without the 0x"
        ),
        "{run:?}"
    );
}

#[test]
fn a_hex_key_of_the_wrong_length_counts_its_digits() {
    let db = create(Some(&KEY));
    let file = write_key_file(&db, "hex62.key", &hex(&KEY).as_bytes()[..62]);
    let run = rush(&db.path, &["list", "--key-file", &file], &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("62 hex digits found, expected 64 hex digits (32 bytes)"),
        "{run:?}"
    );
    let env = rush(&db.path, &["list"], &[("RUSH_KEY", "abcd".to_owned())]);
    assert!(
        env.stderr
            .contains("RUSH_KEY: 4 hex digits found, expected 64 hex digits (32 bytes)"),
        "{env:?}"
    );
    let text = rush(&db.path, &["list"], &[("RUSH_KEY", "not a key".to_owned())]);
    assert!(
        text.stderr
            .contains("RUSH_KEY: 7 characters found (whitespace aside), not all hex digits, expected 64 hex digits (32 bytes)"),
        "{text:?}"
    );
}
