//! 1,000 actors x 100 commands at once, on sled with durable group commit: every reply
//! arrives, every event is journaled once, in per-entity order.
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

use account::{Account, AccountEvent, deposit};
use rush_actor::{Persistence, PersistenceConfig};
use rush_store::{Backend, Store};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_actors_with_a_hundred_commands_each() {
    const ACTORS: u64 = 1000;
    const COMMANDS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(engine_under_test::at(dir.path()));
    let persistence = Persistence::open_shared(backend.clone(), PersistenceConfig::default())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..ACTORS)
        .map(|a| {
            let entity = persistence.entity::<Account>(&format!("load-{a}"));
            tokio::spawn(async move {
                for tag in 1..=COMMANDS {
                    assert_eq!(
                        entity.ask(deposit(a + 1, tag)).await.unwrap(),
                        (a + 1) * tag
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Snapshots are written after the reply: count once every handler has finished.
    persistence.shutdown().await.unwrap();
    let rush_store::WriterStats {
        groups,
        writes: members,
    } = persistence.group_commit_stats();
    assert_eq!(members, ACTORS * COMMANDS + ACTORS);
    assert!(
        groups < members / 10,
        "group commit shares flushes: {groups} groups for {members} appends"
    );
    for a in (0..ACTORS).step_by(7) {
        let store = Store::<Account>::with_backend(
            "accounts",
            &format!("load-{a}"),
            backend.clone(),
            None,
            true,
        )
        .unwrap();
        let tags: Vec<u64> = store
            .events(0, u64::MAX)
            .unwrap()
            .iter()
            .map(|e| match e {
                AccountEvent::Deposited { tag, .. } => *tag,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(tags, (1..=COMMANDS).collect::<Vec<_>>(), "entity {a}");
        assert_eq!(
            store.snapshot_sequence_numbers().unwrap(),
            vec![100],
            "one snapshot each, at 100"
        );
    }
}
