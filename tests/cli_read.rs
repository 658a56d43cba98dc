//! `rush list`, `events`, `stats` and a clean `verify` on real folders, plain and encrypted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;

use cli::{KEY, create, hex, rush};

#[test]
fn list_shows_entities_event_counts_ends_and_snapshots() {
    let db = create(None);
    let run = rush(&db.path, &["list"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let alice = run.stdout.lines().find(|l| l.contains("alice")).unwrap();
    let cells: Vec<&str> = alice.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        ["accounts", "alice", "4", "1..=4", "4"],
        "{alice}"
    );
    assert!(alice.contains("1 (newest at 3)"), "{alice}");
    assert!(
        run.stdout
            .contains("collection \"accounts\": 2 entities, 5 events stored, log offset 5"),
        "{}",
        run.stdout
    );
}

#[test]
fn events_of_a_plain_database_show_envelopes_and_meta_without_a_key() {
    let db = create(None);
    let run = rush(&db.path, &["events", "accounts", "alice"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), 4);
    let first = &lines[0];
    assert_eq!(first["seq"], 1);
    assert_eq!(first["encrypted"], false);
    assert_eq!(first["format_version"], 3);
    assert_eq!(first["event_type"], "Deposited");
    assert_eq!(first["tags"][0], "large");
    assert_eq!(first["metadata"]["correlation_id"], "req-1");
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");
    assert!(
        first.get("event").is_none(),
        "the shipped binary decodes nothing"
    );
    assert_eq!(lines[3]["compressed"], true, "the 400-byte note is gzipped");
    assert!(lines[3]["payload_len"].as_u64().unwrap() > 400);
}

#[test]
fn events_of_an_encrypted_database_need_the_key_for_their_meta() {
    let db = create(Some(&KEY));
    let sealed = rush(&db.path, &["events", "accounts", "alice"], &[]);
    assert_eq!(sealed.code, 0, "{sealed:?}");
    let line = &sealed.json_lines()[0];
    assert_eq!(line["encrypted"], true);
    assert_eq!(line["key_id"].as_str().unwrap().len(), 8);
    assert!(line.get("event_type").is_none(), "{line}");

    let opened = rush(
        &db.path,
        &["events", "accounts", "alice", "--from", "2"],
        &[("RUSH_KEY", hex(&KEY))],
    );
    assert_eq!(opened.code, 0, "{opened:?}");
    let lines = opened.json_lines();
    assert_eq!((lines.len(), &lines[0]["seq"]), (3, &serde_json::json!(2)));
    assert_eq!(lines[1]["event_type"], "Withdrawn");
    assert!(lines[1]["payload_len"].as_u64().is_some());
}

#[test]
fn stats_count_records_compression_and_snapshot_coverage() {
    let db = create(Some(&KEY));
    let run = rush(&db.path, &["stats"], &[("RUSH_KEY", hex(&KEY))]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = &run.stdout;
    assert!(out.contains("events: 5 records"), "{out}");
    assert!(
        out.contains("1 compressed, 5 encrypted; 1 compressed records inflate"),
        "{out}"
    );
    assert!(out.contains("snapshots: 1 records"), "{out}");
    assert!(out.contains("table rows: 1 records"), "{out}");
    assert!(out.contains("(5 entries)"), "{out}");
    assert!(
        out.contains("entities: 2 in 1 collections; 1 with a snapshot"),
        "{out}"
    );
    assert!(out.contains("snapshot coverage: 1 events after the newest snapshots; 1 events of entities without a snapshot"), "{out}");
}

#[test]
fn verify_of_a_clean_database_exits_zero_with_and_without_the_key() {
    let db = create(Some(&KEY));
    let sealed = rush(&db.path, &["verify"], &[]);
    assert_eq!(sealed.code, 0, "{sealed:?}");
    assert!(sealed.stdout.contains("checked 5 events, 1 snapshots, 0 deletion marks, 5 log entries, 1 table rows (7 encrypted records checked for length only"), "{}", sealed.stdout);
    let opened = rush(
        &db.path,
        &["verify", "accounts", "alice"],
        &[("RUSH_KEY", hex(&KEY))],
    );
    assert_eq!(opened.code, 0, "{opened:?}");
    assert!(opened.stdout.contains("checked 4 events, 1 snapshots, 0 deletion marks, 0 log entries, 0 table rows: 0 errors, 0 warnings"), "{}", opened.stdout);
}

#[test]
fn help_says_the_binary_decodes_no_event_types() {
    let run = rush(std::path::Path::new("unused"), &["--help"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("This build decodes no event types"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Cli::new().decode::<MyActor>"),
        "{}",
        run.stdout
    );
}
