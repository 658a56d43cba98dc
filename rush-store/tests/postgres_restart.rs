//! PostgreSQL stopped at once (as by `pg_ctl -m immediate`) and started again: while it is
//! away a write fails with a typed I/O error (the outcome unknown, never a panic); once it
//! is back the same handle writes again, and every acknowledged event is there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/postgres_server.rs"]
mod postgres_server;

use rush_store::{Backend, Error, PersistentActor, PostgresManager, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Counter {
    total: u64,
}

impl PersistentActor for Counter {
    type Event = u64;
    fn apply(&mut self, n: &u64) {
        self.total += n;
    }
}

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
