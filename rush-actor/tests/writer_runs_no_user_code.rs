//! The writer runs no user code: an upcaster that panics once the actors are running
//! (user code, which opening a store on the writer thread used to run while deleting
//! covered events) cannot take down the writer that every other actor shares.
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

use account::{Account, Cmd, deposit};
use rush_actor::{Effect, EventSourced, Persistence, PersistenceConfig, SnapshotPolicy};
use rush_store::{PersistentActor, Upcasters};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the test's actors have recovered: from then on, `upcasters` panics.
static UPCASTERS_PANIC: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Tally {
    count: u64,
}

impl PersistentActor for Tally {
    type Event = u64;
    fn apply(&mut self, n: &u64) {
        self.count += n;
    }
    fn upcasters(_upcasters: &mut Upcasters) {
        assert!(
            !UPCASTERS_PANIC.load(Ordering::SeqCst),
            "upcasters asked for after recovery"
        );
    }
}

impl EventSourced for Tally {
    const COLLECTION: &'static str = "tallies";
    type Command = u64;
    type Reply = u64;
    type Rejection = String;

    fn decide(&self, n: u64) -> Result<Effect<Self>, String> {
        Ok(Effect::persist(n).then_reply(|s: &Tally| s.count))
    }

    fn snapshot_policy() -> Option<SnapshotPolicy> {
        Some(SnapshotPolicy {
            every: Some(2),
            keep: 1,
            delete_covered_events: true,
        })
    }
}

#[tokio::test]
async fn a_panicking_upcaster_cannot_stop_the_writer_other_actors_share() {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    let tally = persistence.get_or_spawn::<Tally>("t").await.unwrap();
    let account = persistence.get_or_spawn::<Account>("a").await.unwrap();
    UPCASTERS_PANIC.store(true, Ordering::SeqCst);
    // Snapshots at 2, 4 and 6, each followed by deleting what the snapshot covers.
    for n in 1..=6 {
        assert_eq!(tally.ask(1).await.unwrap(), n);
    }
    assert_eq!(account.ask(deposit(5, 1)).await.unwrap(), 5);
    assert_eq!(account.ask(Cmd::Balance).await.unwrap(), 5);
    UPCASTERS_PANIC.store(false, Ordering::SeqCst);
    persistence.shutdown().await.unwrap();
}
