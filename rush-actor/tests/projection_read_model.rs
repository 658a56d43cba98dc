//! A projection builds a read model from the commands of several persistent actors that
//! matches the actors' own states, and a runner spawned again resumes from the checkpoint:
//! in exactly-once mode no event is handed to the handler twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

#[path = "support/account.rs"]
mod account;
#[path = "support/projections.rs"]
mod projections;

use account::{Account, Cmd};
use projections::{Faults, Handled, TableLedger, repeated};
use rush_actor::{Persistence, PersistenceConfig, ProjectionSettings};
use std::sync::Arc;
use std::time::Duration;

const ACCOUNTS: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// Runs `rounds` of commands on every account, concurrently (a withdrawal may be refused).
async fn run_commands(persistence: &Persistence, rounds: u64, start_tag: u64) {
    let mut clients = Vec::new();
    for (i, id) in ACCOUNTS.iter().enumerate() {
        let account = persistence.entity::<Account>(id);
        clients.push(tokio::spawn(async move {
            for round in 0..rounds {
                let tag = start_tag + round;
                let amount = 1 + (round * 7 + i as u64) % 13;
                let cmd = if round % 3 == 2 {
                    Cmd::Withdraw { amount, tag }
                } else {
                    Cmd::Deposit { amount, tag }
                };
                let _ = account.ask(cmd).await;
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
}

async fn assert_matches_actors(persistence: &Persistence, ledger: &TableLedger) {
    let query = persistence.query::<Account>().unwrap();
    for id in ACCOUNTS {
        let balance = persistence
            .entity::<Account>(id)
            .ask(Cmd::Balance)
            .await
            .unwrap();
        assert_eq!(
            ledger.balances.get(id).unwrap(),
            Some(balance as i64),
            "{id}"
        );
        let events = query
            .events(1, &rush_store::EventFilter::all().entity(id))
            .unwrap();
        assert_eq!(
            ledger.counts.get(id).unwrap(),
            Some(events.len() as u64),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_model_matches_the_actors_and_a_new_runner_resumes_without_reprocessing() {
    let dir = tempfile::tempdir().unwrap();
    let config = PersistenceConfig {
        encryption_key: Some([3u8; 32].into()),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::at(dir.path()), config)
        .await
        .unwrap();
    let handled: Handled = Arc::default();
    let ledger = || TableLedger {
        name: "ledger".into(),
        balances: persistence.table("ledger.balances").unwrap(),
        counts: persistence.table("ledger.counts").unwrap(),
        handled: Arc::clone(&handled),
        faults: Arc::new(Faults::default()),
    };
    let settings = ProjectionSettings {
        batch_size: 7,
        ..ProjectionSettings::default()
    };

    // The projection runs while the commands are being handled.
    let first = persistence
        .spawn_projection_with(ledger(), settings)
        .await
        .unwrap();
    run_commands(&persistence, 30, 1).await;
    let lag = first
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    let head = persistence
        .query::<Account>()
        .unwrap()
        .highest_offset()
        .unwrap();
    assert!(head > 80, "most commands persisted an event: {head}");
    assert_eq!(
        (lag.checkpoint, lag.head, lag.offsets_behind),
        (head, head, 0)
    );
    assert_matches_actors(&persistence, &ledger()).await;
    first.stop().await.unwrap();

    // Events persisted while no runner runs are picked up by the next one, from the
    // checkpoint: nothing before it is handed to the handler again.
    run_commands(&persistence, 12, 100).await;
    let second = persistence
        .spawn_projection_with(ledger(), settings)
        .await
        .unwrap();
    assert_eq!(second.lag().unwrap().checkpoint, head);
    second
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    assert_matches_actors(&persistence, &ledger()).await;
    let new_head = persistence
        .query::<Account>()
        .unwrap()
        .highest_offset()
        .unwrap();
    assert!(new_head > head);
    assert_eq!(repeated(&handled), Vec::<u64>::new());
    assert_eq!(*handled.lock().unwrap(), (1..=new_head).collect::<Vec<_>>());
    second.stop().await.unwrap();
    persistence.shutdown().await.unwrap();
}
