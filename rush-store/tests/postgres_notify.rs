//! Live subscriptions across processes are woken by `NOTIFY` (issue 11): a commit that
//! appends tells the other handles of its database after it commits, and a subscriber
//! in another process hears of it without waiting for its poll.
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

use rush_store::{Backend, EventFilter, EventQuery, PostgresManager, Store};
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(10);

#[test]
fn an_append_by_another_handle_changes_the_signal_and_reaches_a_subscriber() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    // Two handles: separate connections and notice payloads, as two processes have.
    let reader: Arc<dyn Backend> =
        Arc::new(PostgresManager::connect(&server.url, "notify").unwrap());
    let writer: Arc<dyn Backend> =
        Arc::new(PostgresManager::connect(&server.url, "notify").unwrap());
    let mut heard = reader
        .appended_elsewhere()
        .expect("PostgreSQL hears others");
    assert!(writer.appended_elsewhere().is_some());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The listener says once that it is listening (it may have missed appends before).
    runtime
        .block_on(async { tokio::time::timeout(PATIENCE, heard.changed()).await })
        .expect("listening")
        .unwrap();
    heard.borrow_and_update();

    let mut store = Store::<Counter>::new("c", "e", writer.clone(), None, false).unwrap();
    store.persist(&1).unwrap();
    runtime
        .block_on(async { tokio::time::timeout(PATIENCE, heard.changed()).await })
        .expect("the other handle's append was heard")
        .unwrap();

    // A subscriber on the reader's handle gets the writer's events.
    let query = EventQuery::<Counter>::new(reader, "c", None).unwrap();
    runtime.block_on(async {
        let mut live = query.subscribe(1, EventFilter::all());
        assert_eq!(live.next().await.unwrap().unwrap().offset, 1);
        let writer = std::thread::spawn(move || {
            for _ in 0..20 {
                store.persist(&1).unwrap();
            }
        });
        for offset in 2..=21 {
            let event = tokio::time::timeout(PATIENCE, live.next())
                .await
                .expect("the subscriber heard")
                .unwrap()
                .unwrap();
            assert_eq!(event.offset, offset);
        }
        writer.join().unwrap();
    });
}
