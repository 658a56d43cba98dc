//! Every metric of `rush_store::metric_names` is recorded through the `metrics` facade by a
//! workload that does what it measures: group commits, persists, a rejection, a snapshot, a
//! restart, a recovery, a projection and a subscription. One test: the recorder is global
//! to the process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/account.rs"]
mod account;

use account::{Account, Cmd, deposit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rush_actor::{
    Delivery, Persistence, PersistenceConfig, Projection, ProjectionError, ProjectionTx,
    SnapshotPolicy, metric_names,
};
use rush_store::{EventFilter, MemoryManager, StoredEvent};
use std::collections::BTreeMap;
use std::time::Duration;

struct Counting;

impl Projection for Counting {
    type Actor = Account;
    fn name(&self) -> &str {
        "counting"
    }
    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }
    async fn handle(
        &mut self,
        _event: &StoredEvent<account::AccountEvent>,
        _tx: &mut ProjectionTx,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_metric_is_recorded_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    metric_names::describe();

    let mut config = PersistenceConfig {
        snapshots: SnapshotPolicy::every(2),
        ..PersistenceConfig::default()
    };
    config.restart.min_backoff = Duration::from_millis(1);
    let persistence = Persistence::open(MemoryManager::default(), config)
        .await
        .unwrap();
    let projection = persistence.spawn_projection(Counting).await.unwrap();
    let query = persistence.query::<Account>().unwrap();
    let mut subscription = query.subscribe(0, EventFilter::all());
    let alice = persistence.entity::<Account>("alice");
    for tag in 1..=3 {
        alice.ask(deposit(10, tag)).await.unwrap();
    }
    assert!(
        alice
            .ask(Cmd::Withdraw {
                amount: 1_000,
                tag: 9
            })
            .await
            .is_err()
    );
    // A panic: the supervisor restarts the actor, which recovers.
    assert!(alice.ask(Cmd::Panic).await.is_err());
    assert_eq!(alice.ask(deposit(1, 4)).await.unwrap(), 31);
    subscription.next().await.unwrap().unwrap();
    projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    persistence.shutdown().await.unwrap();

    let mut seen: BTreeMap<String, (Vec<(String, String)>, DebugValue)> = BTreeMap::new();
    for (key, _unit, _description, value) in snapshotter.snapshot().into_vec() {
        let labels = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        seen.insert(key.key().name().to_owned(), (labels, value));
    }
    for name in metric_names::ALL {
        let (labels, value) = seen
            .get(name)
            .unwrap_or_else(|| panic!("{name} was not recorded; seen: {:?}", seen.keys()));
        // Labels name a collection or a projection, never an entity.
        for (key, label) in labels {
            assert!(key == "collection" || key == "projection", "{name}: {key}");
            assert!(label != "alice", "{name} is labelled with an entity");
        }
        if let DebugValue::Counter(n) = value {
            assert!(*n > 0, "{name} counted nothing");
        }
        if let DebugValue::Histogram(samples) = value {
            assert!(!samples.is_empty(), "{name} has no samples");
        }
    }
    let events = match &seen[metric_names::EVENTS_PERSISTED_TOTAL].1 {
        DebugValue::Counter(n) => *n,
        other => panic!("{other:?}"),
    };
    assert_eq!(events, 4);
    let restarts = match &seen[metric_names::ACTOR_RESTARTS_TOTAL].1 {
        DebugValue::Counter(n) => *n,
        other => panic!("{other:?}"),
    };
    assert_eq!(restarts, 1);
}
