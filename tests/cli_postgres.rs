//! The inspector on a PostgreSQL journal (issue 11): `rush postgres://... --schema NAME`
//! lists, prints and verifies what a folder's journal would show; a schema without Rush's
//! tables is refused without being created; backup of a server's journal says what to use
//! instead; `migrate --engine postgres` moves a folder's journal to a server, resumably.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod cli;
#[path = "../rush-store/tests/support/postgres_server.rs"]
mod postgres_server;

use cli::{KEY, create, fill, hex, rush};
use rush::store::{Backend, PostgresManager};
use std::path::Path;
use std::sync::Arc;

#[test]
fn the_inspector_reads_a_postgresql_journal_and_creates_nothing() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let engine: Arc<dyn Backend> = Arc::new(PostgresManager::connect(&server.url, "bank").unwrap());
    fill(engine, Some(&KEY));
    let url = Path::new(&server.url);
    let key = [("RUSH_KEY", hex(&KEY))];

    let run = rush(url, &["--schema", "bank", "list"], &key);
    assert_eq!(run.code, 0, "{run:?}");
    let alice = run.stdout.lines().find(|l| l.contains("alice")).unwrap();
    let cells: Vec<&str> = alice.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        ["accounts", "alice", "4", "1..=4", "4"],
        "{alice}"
    );
    assert!(
        run.copy_note.is_none(),
        "a server's journal is read in place"
    );

    let run = rush(
        url,
        &["--schema", "bank", "events", "accounts", "alice"],
        &key,
    );
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["metadata"]["correlation_id"], "req-1");

    let run = rush(url, &["--schema", "bank", "verify"], &key);
    assert_eq!(run.code, 0, "{run:?}");

    // A schema with no journal: refused, and still not there afterwards.
    let run = rush(url, &["--schema", "nothing_here", "list"], &key);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("holds no Rush tables"),
        "{}",
        run.stderr
    );
    let run = rush(url, &["--schema", "nothing_here", "list"], &key);
    assert!(
        run.stderr.contains("holds no Rush tables"),
        "{}",
        run.stderr
    );

    let dest = tempfile::tempdir().unwrap();
    let to = dest.path().join("copy");
    let run = rush(
        url,
        &["--schema", "bank", "backup", to.to_str().unwrap()],
        &key,
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("pg_dump"), "{}", run.stderr);
    assert!(!to.exists());
}

#[test]
fn migrate_moves_a_folders_journal_to_postgresql_and_the_inspector_reads_it_there() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let db = create(Some(&KEY));
    let key = [("RUSH_KEY", hex(&KEY))];
    let args = [
        "--schema",
        "moved",
        "migrate",
        &server.url,
        "--engine",
        "postgres",
    ];
    let run = rush(&db.path, &args, &key);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("schema moved"), "{}", run.stdout);
    assert!(run.stdout.contains("identical"), "{}", run.stdout);
    // Again: everything is there already, compared once more.
    let run = rush(&db.path, &args, &key);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("(0 copied now"), "{}", run.stdout);

    let url = Path::new(&server.url);
    let run = rush(url, &["--schema", "moved", "list"], &key);
    assert_eq!(run.code, 0, "{run:?}");
    let alice = run.stdout.lines().find(|l| l.contains("alice")).unwrap();
    let cells: Vec<&str> = alice.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        ["accounts", "alice", "4", "1..=4", "4"],
        "{alice}"
    );
    let run = rush(url, &["--schema", "moved", "verify"], &key);
    assert_eq!(run.code, 0, "{run:?}");

    // A schema holding another journal is refused, not mixed.
    let other = create(None);
    let run = rush(&other.path, &args, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not the source's"), "{}", run.stderr);
    // --engine postgres wants a URL, and a URL wants --engine postgres.
    let run = rush(
        &db.path,
        &["migrate", "/tmp/x", "--engine", "postgres"],
        &key,
    );
    assert_eq!(run.code, 2, "{run:?}");
    let run = rush(
        &db.path,
        &["migrate", &server.url, "--engine", "redb"],
        &key,
    );
    assert_eq!(run.code, 2, "{run:?}");
}
