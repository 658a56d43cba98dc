//! PostgreSQL shared by several processes (issue 11): four writer processes commit 2,000
//! events each to one collection while a subscriber in a fifth checks that it never sees a
//! gap or n+1 before n and that the total is exact; a stale writer in one process gets
//! `Conflict` after another process moved the entity on, and the journal stays contiguous.
//! Each role is this test binary run again with `RUSH_PG_ROLE` set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/counter.rs"]
mod counter;
#[path = "support/postgres_server.rs"]
mod postgres_server;

use counter::Counter;

use rush_store::{Backend, Error, EventFilter, EventQuery, PostgresManager, Store};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

const WRITERS: u64 = 4;
const EVENTS: u64 = 2000;
const SCHEMA: &str = "processes";

fn engine(url: &str, schema: &str) -> Arc<dyn Backend> {
    Arc::new(PostgresManager::connect(url, schema).unwrap())
}

/// Runs the role named by `RUSH_PG_ROLE`, if any, and returns whether it did.
fn play_role() -> bool {
    let (Ok(role), Ok(url)) = (
        std::env::var("RUSH_PG_ROLE"),
        std::env::var("RUSH_TEST_POSTGRES_URL"),
    ) else {
        return false;
    };
    let schema = std::env::var("RUSH_PG_SCHEMA").unwrap();
    if let Some(n) = role.strip_prefix("writer:") {
        let mut store =
            Store::<Counter>::new("c", &format!("w{n}"), engine(&url, &schema), None, false)
                .unwrap();
        for _ in 0..EVENTS / 10 {
            store.persist_batch(&[1; 10]).unwrap();
        }
        println!("wrote {EVENTS}");
    } else if role == "subscriber" {
        let query = EventQuery::<Counter>::new(engine(&url, &schema), "c", None).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let mut live = query.subscribe(1, EventFilter::all());
            println!("subscribed");
            for expected in 1..=WRITERS * EVENTS {
                let event = live.next().await.unwrap().unwrap();
                assert_eq!(event.offset, expected, "a gap, or n+1 before n");
            }
            println!("saw {}", WRITERS * EVENTS);
        });
    } else if role == "mover" {
        let mut store =
            Store::<Counter>::new("c", "shared", engine(&url, &schema), None, false).unwrap();
        store.recover().unwrap();
        store.persist(&5).unwrap();
        println!("moved");
    }
    true
}

fn spawn(test: &str, role: &str, url: &str, schema: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("RUSH_PG_ROLE", role)
        .env("RUSH_TEST_POSTGRES_URL", url)
        .env("RUSH_PG_SCHEMA", schema)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` and returns its stdout, failing on a non-zero exit.
fn finish(child: Child, what: &str) -> String {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{what} failed: {stdout}");
    stdout
}

#[test]
fn four_writer_processes_and_a_subscriber_in_a_fifth_see_every_offset_once_in_order() {
    if play_role() {
        return;
    }
    let Some(server) = postgres_server::start() else {
        return;
    };
    let test = "four_writer_processes_and_a_subscriber_in_a_fifth_see_every_offset_once_in_order";
    let schema = format!("{SCHEMA}_a");
    // The schema exists before anyone reads it.
    drop(engine(&server.url, &schema));
    let mut subscriber = spawn(test, "subscriber", &server.url, &schema);
    let mut lines = BufReader::new(subscriber.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().contains("subscribed")));
    let started = Instant::now();
    let writers: Vec<Child> = (0..WRITERS)
        .map(|n| spawn(test, &format!("writer:{n}"), &server.url, &schema))
        .collect();
    for (n, writer) in writers.into_iter().enumerate() {
        assert!(finish(writer, &format!("writer {n}")).contains(&format!("wrote {EVENTS}")));
    }
    let rest: Vec<String> = lines.map_while(std::result::Result::ok).collect();
    assert!(
        subscriber.wait().unwrap().success(),
        "the subscriber failed: {rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains(&format!("saw {}", WRITERS * EVENTS))),
        "{rest:?}"
    );
    eprintln!(
        "{} events from {WRITERS} processes in {:?}",
        WRITERS * EVENTS,
        started.elapsed()
    );
    // The total is exact: the log holds every event once.
    let query = EventQuery::<Counter>::new(engine(&server.url, &schema), "c", None).unwrap();
    assert_eq!(query.highest_offset().unwrap(), WRITERS * EVENTS);
}

#[test]
fn a_stale_writer_in_another_process_gets_conflict_and_nothing_is_written() {
    if play_role() {
        return;
    }
    let Some(server) = postgres_server::start() else {
        return;
    };
    let test = "a_stale_writer_in_another_process_gets_conflict_and_nothing_is_written";
    let schema = format!("{SCHEMA}_b");
    let mut stale =
        Store::<Counter>::new("c", "shared", engine(&server.url, &schema), None, false).unwrap();
    stale.persist(&1).unwrap();
    // Another process moves the entity on.
    assert!(finish(spawn(test, "mover", &server.url, &schema), "the mover").contains("moved"));
    let refused = stale.persist(&100);
    assert!(
        matches!(refused, Err(Error::Conflict { .. })),
        "{refused:?}"
    );
    let fresh =
        Store::<Counter>::new("c", "shared", engine(&server.url, &schema), None, false).unwrap();
    let state = fresh.recover().unwrap().unwrap();
    assert_eq!(
        state.total, 6,
        "1 from here, 5 from the other process, nothing stale"
    );
}
