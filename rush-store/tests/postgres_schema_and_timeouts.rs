//! The PostgreSQL engine's edges (issue 11): a schema written by a newer Rush is refused
//! with a clear error and left alone; a server that accepts the connection but never
//! answers fails the open within the connect timeout; a server that stops answering in
//! the middle (its processes frozen, as in a network partition) fails a call within the
//! statement timeout, typed as I/O, and the same handle works once it answers again; a
//! statement the server cancels for its timeout writes nothing.
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

use rush_store::{Backend, Error, PostgresConfig, PostgresManager, Store};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `sql` on the server with a plain client of the test's own.
fn raw(url: &str, sql: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
    });
}

#[test]
fn a_schema_written_by_a_newer_rush_is_refused_and_left_alone() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let engine: Arc<dyn Backend> =
        Arc::new(PostgresManager::connect(&server.url, "newer").unwrap());
    let mut store = Store::<Counter>::new("c", "e", engine.clone(), None, false).unwrap();
    store.persist(&3).unwrap();
    drop((store, engine));
    raw(&server.url, "INSERT INTO newer.rush_schema VALUES (99)");
    let refused = PostgresManager::connect(&server.url, "newer").unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(refused, Error::InvalidArgument(_)) && message.contains("version 99"),
        "{message}"
    );
    assert!(message.contains("upgrade Rush"), "{message}");
    // Nothing was changed: taking the newer version away opens it with its events.
    raw(
        &server.url,
        "DELETE FROM newer.rush_schema WHERE version = 99",
    );
    let engine: Arc<dyn Backend> =
        Arc::new(PostgresManager::connect(&server.url, "newer").unwrap());
    let store = Store::<Counter>::new("c", "e", engine, None, false).unwrap();
    assert_eq!(store.recover().unwrap().unwrap().total, 3);
}

#[test]
fn a_server_that_never_answers_fails_the_open_within_the_connect_timeout() {
    // A socket that accepts (the kernel does) but never speaks PostgreSQL.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut config = PostgresConfig::new(&format!("postgres://rush@127.0.0.1:{port}/x"), "s");
    config.connect_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let error = PostgresManager::open(config).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

/// The PIDs of the server's processes: the postmaster and its children.
fn server_processes(postmaster: u32) -> Vec<String> {
    let children = Command::new("pgrep")
        .args(["-P", &postmaster.to_string()])
        .output()
        .unwrap();
    let mut pids: Vec<String> = String::from_utf8_lossy(&children.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    pids.push(postmaster.to_string());
    pids
}

fn signal(name: &str, pids: &[String]) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_server_that_stops_answering_fails_a_call_within_the_statement_timeout() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let Some(postmaster) = server.pid else {
        println!("skipped: RUSH_TEST_POSTGRES_URL names a server this test cannot freeze");
        return;
    };
    let mut config = PostgresConfig::new(&server.url, "frozen");
    config.statement_timeout = Duration::from_secs(1);
    config.connect_timeout = Duration::from_secs(1);
    let engine: Arc<dyn Backend> = Arc::new(PostgresManager::open(config).unwrap());
    let mut store = Store::<Counter>::new("c", "e", engine.clone(), None, false).unwrap();
    store.persist(&1).unwrap();

    let frozen = server_processes(postmaster);
    signal("STOP", &frozen);
    let started = Instant::now();
    let away = engine.get(b"anything");
    let waited = started.elapsed();
    signal("CONT", &frozen);
    assert!(matches!(away, Err(Error::Io { .. })), "{away:?}");
    // The statement timeout (1 s) and the engine's second of grace, per attempt: a read
    // is tried twice, and a replaced connection may wait for its connect timeout.
    assert!(waited < Duration::from_secs(20), "{waited:?}");

    // The same handle serves again.
    store.persist(&1).unwrap();
    let again = Store::<Counter>::new("c", "e", engine, None, false).unwrap();
    let total = again.recover().unwrap().unwrap().total;
    assert_eq!(total, 2);
}

#[test]
fn a_commit_the_server_cancels_for_its_timeout_writes_nothing() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let mut config = PostgresConfig::new(&server.url, "cancelled");
    config.statement_timeout = Duration::from_millis(300);
    let engine: Arc<dyn Backend> = Arc::new(PostgresManager::open(config).unwrap());
    let mut store = Store::<Counter>::new("c", "e", engine.clone(), None, false).unwrap();
    store.persist(&1).unwrap();
    // Another session holds the head row of the collection's log: the commit waits for
    // it until the server cancels the statement.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (holder, connection) = runtime
        .block_on(tokio_postgres::connect(&server.url, tokio_postgres::NoTls))
        .unwrap();
    runtime.spawn(connection);
    runtime
        .block_on(holder.batch_execute("BEGIN; SELECT * FROM cancelled.rush_log_heads FOR UPDATE"))
        .unwrap();
    let cancelled = store.persist(&1);
    assert!(cancelled.is_err(), "{cancelled:?}");
    runtime.block_on(holder.batch_execute("ROLLBACK")).unwrap();
    let again = Store::<Counter>::new("c", "e", engine, None, false).unwrap();
    assert_eq!(
        again.recover().unwrap().unwrap().total,
        1,
        "nothing was written"
    );
}

/// The offsets of every event in collection `c`, read through a query.
fn offsets(engine: &Arc<dyn Backend>) -> Vec<u64> {
    let query = rush_store::EventQuery::<Counter>::new(engine.clone(), "c", None).unwrap();
    let page = query
        .read(1, &rush_store::EventFilter::all(), 10_000)
        .unwrap();
    page.events.iter().map(|e| e.offset).collect()
}

#[test]
fn records_copied_in_as_stored_go_on_at_their_offsets_and_a_head_row_behind_is_refused() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    // A journal written elsewhere, copied in record by record (what `migrate` does): the
    // collection log's blocks arrive, its head row does not.
    let source: Arc<dyn Backend> = Arc::new(rush_store::MemoryManager::default());
    for entity in ["a", "b"] {
        let mut store = Store::<Counter>::new("c", entity, source.clone(), None, false).unwrap();
        store.persist_batch(&[1, 1, 1]).unwrap();
    }
    let engine: Arc<dyn Backend> =
        Arc::new(PostgresManager::connect(&server.url, "copied").unwrap());
    rush_store::inspect::transfer::copy_records(source.as_ref(), engine.as_ref(), &mut |_| true)
        .unwrap();
    assert_eq!(offsets(&engine), (1..=6).collect::<Vec<_>>());
    let mut store = Store::<Counter>::new("c", "a", engine.clone(), None, false).unwrap();
    store.recover().unwrap();
    store.persist(&1).unwrap();
    assert_eq!(
        offsets(&engine),
        (1..=7).collect::<Vec<_>>(),
        "offset 7, not 1 again"
    );

    // A head row set back (part of the schema restored from an older copy): the next
    // append is refused as damage, and no stored block is replaced.
    raw(&server.url, "UPDATE copied.rush_log_heads SET last = 2");
    let refused = store.persist(&1);
    assert!(
        matches!(refused, Err(Error::Corrupted { .. })),
        "{refused:?}"
    );
    assert_eq!(offsets(&engine), (1..=7).collect::<Vec<_>>());
}
