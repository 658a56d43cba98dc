//! The inspector on a PostgreSQL journal (issue 11): `rush postgres://... --schema NAME`
//! lists, prints and verifies what a folder's journal would show; a schema without Rush's
//! tables is refused without being created; backup and migrate say what to use instead.
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

use cli::{KEY, fill, hex, rush};
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
