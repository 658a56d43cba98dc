//! The read side of persistent actors: events persisted through the group commit get
//! collection offsets, carry the metadata of the command, and reach live subscribers.
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

use account::{Account, Cmd};
use rush_actor::{Persistence, PersistenceConfig};
use rush_store::{EventFilter, EventMetadata};
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_sent_with_metadata_are_found_by_correlation_in_queries() {
    let dir = tempfile::tempdir().unwrap();
    let config = PersistenceConfig {
        encryption_key: Some([5u8; 32].into()),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::at(dir.path()), config)
        .await
        .unwrap();
    let alice = persistence.entity::<Account>("alice");
    let bob = persistence.entity::<Account>("bob");
    alice
        .ask(Cmd::Deposit { amount: 10, tag: 1 })
        .await
        .unwrap();
    let transfer = EventMetadata::default()
        .with_correlation_id("transfer-1")
        .with_causation_id("debit");
    alice
        .ask_with(Cmd::Withdraw { amount: 4, tag: 2 }, transfer.clone())
        .await
        .unwrap();
    bob.ask_with(
        Cmd::Deposit { amount: 4, tag: 3 },
        transfer.clone().with_causation_id("credit"),
    )
    .await
    .unwrap();
    let query = persistence.query::<Account>().unwrap();
    let all = query.events(1, &EventFilter::all()).unwrap();
    let summary: Vec<_> = all
        .iter()
        .map(|e| (e.offset, e.entity_id.as_str(), e.event_type.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "alice", "Deposited"),
            (2, "alice", "Withdrawn"),
            (3, "bob", "Deposited")
        ]
    );
    let correlated: Vec<_> = all
        .iter()
        .filter(|e| e.metadata.correlation_id.as_deref() == Some("transfer-1"))
        .map(|e| e.metadata.causation_id.clone().unwrap())
        .collect();
    assert_eq!(correlated, vec!["debit".to_owned(), "credit".to_owned()]);
    assert!(all[0].metadata.is_empty());
    persistence.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_every_actor_event_once_in_offset_order() {
    let dir = tempfile::tempdir().unwrap();
    let persistence = Persistence::open(
        engine_under_test::at(dir.path()),
        PersistenceConfig::default(),
    )
    .await
    .unwrap();
    let query = persistence.query::<Account>().unwrap();
    let mut subscription = query.subscribe(1, EventFilter::all());
    let mut clients = Vec::new();
    for client in 0..8u64 {
        let account = persistence.entity::<Account>(&format!("acc-{client}"));
        clients.push(tokio::spawn(async move {
            for tag in 1..=25 {
                account.ask(Cmd::Deposit { amount: 1, tag }).await.unwrap();
            }
        }));
    }
    let mut last_tag: HashMap<String, u64> = HashMap::new();
    for offset in 1..=200 {
        let event = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.offset, offset);
        let account::AccountEvent::Deposited { tag, .. } = event.event else {
            panic!("unexpected {event:?}");
        };
        let previous = last_tag.insert(event.entity_id.clone(), tag).unwrap_or(0);
        assert_eq!(tag, previous + 1, "order within {}", event.entity_id);
    }
    for client in clients {
        client.await.unwrap();
    }
    persistence.shutdown().await.unwrap();
}
