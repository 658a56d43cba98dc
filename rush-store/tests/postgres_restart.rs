//! PostgreSQL stopped at once (as by `pg_ctl -m immediate`) and started again: while it is
//! away a write fails with a typed I/O error (the outcome unknown, never a panic); once it
//! is back the same handle writes again, and every acknowledged event is there.
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

use rush_store::{Backend, Error, PostgresManager, Store};
use std::sync::Arc;

#[test]
fn a_server_restart_fails_writes_typed_meanwhile_and_loses_nothing_acknowledged() {
    let Some(mut server) = postgres_server::start() else {
        return;
    };
    if server.pid.is_none() {
        println!("skipped: RUSH_TEST_POSTGRES_URL names a server this test cannot restart");
        return;
    }
    let engine: Arc<dyn Backend> =
        Arc::new(PostgresManager::connect(&server.url, "restart").unwrap());
    let mut store = Store::<Counter>::new("c", "e", engine.clone(), None, false).unwrap();
    for _ in 0..100 {
        store.persist(&1).unwrap();
    }

    server.stop_immediately();
    let away = store.persist(&1);
    assert!(matches!(away, Err(Error::Io { .. })), "{away:?}");

    server.start_again();
    // The failed write's outcome was unknown: a new handle reads what is there.
    let mut store = Store::<Counter>::new("c", "e", engine.clone(), None, false).unwrap();
    let before = store.recover().unwrap().unwrap().total;
    assert!(before >= 100, "acknowledged events lost: {before}");
    store.persist(&1).unwrap();
    let again = Store::<Counter>::new("c", "e", engine, None, false).unwrap();
    assert_eq!(again.recover().unwrap().unwrap().total, before + 1);
}

/// A connection terminated by the server (`pg_terminate_backend`) in the middle of a commit:
/// that commit fails with a typed I/O error and writes nothing; the next commit, on a new
/// connection, works.
#[test]
fn a_connection_terminated_in_the_middle_of_a_commit_writes_nothing_and_the_next_commit_works() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let schema = "terminated";
    let engine = Arc::new(PostgresManager::connect(&server.url, schema).unwrap());
    let log = b"\x05\x00\x01c".to_vec();
    let append = |value: &[u8]| rush_store::WriteBatch {
        ops: vec![rush_store::WriteOp::Put {
            key: b"k".to_vec(),
            value: value.to_vec(),
        }],
        appends: vec![rush_store::LogAppend {
            log: log.clone(),
            value: value.to_vec(),
        }],
        ..rush_store::WriteBatch::default()
    };
    engine.commit_durable(&append(b"1")).unwrap().0.unwrap();

    // Another session holds the log's head row, so the next commit stops halfway, waiting.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (holder, connection) = runtime
        .block_on(tokio_postgres::connect(&server.url, tokio_postgres::NoTls))
        .unwrap();
    runtime.spawn(connection);
    runtime
        .block_on(holder.batch_execute(&format!(
            "BEGIN; SELECT * FROM {schema}.rush_log_heads FOR UPDATE"
        )))
        .unwrap();
    let committing = {
        let engine = Arc::clone(&engine);
        let batch = append(b"2");
        std::thread::spawn(move || engine.commit_durable(&batch).map(|(outcome, _)| outcome))
    };
    // Terminate the backend that waits for the row lock, in the middle of its commit.
    let terminated = runtime.block_on(async {
        for _ in 0..1000 {
            let rows = holder
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            if !rows.is_empty() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        false
    });
    assert!(terminated, "the commit never waited for the row lock");
    let outcome = committing.join().unwrap();
    assert!(matches!(outcome, Err(Error::Io { .. })), "{outcome:?}");
    runtime.block_on(holder.batch_execute("ROLLBACK")).unwrap();

    // Nothing of it was written; the next commit (a new connection) numbers on from 1.
    assert_eq!(engine.get(b"k").unwrap(), Some(b"1".to_vec()));
    engine.commit_durable(&append(b"3")).unwrap().0.unwrap();
    let end = rush_store::engine_kit::offset_of(&log, &{
        let mut end = log.clone();
        end.push(0xFF);
        engine.scan(&log, &end, 1, true).unwrap()[0].0.clone()
    });
    assert_eq!(end, Some(2), "the failed commit took no offset");
}
