//! A projection handler that errs or panics fails its runner; the supervisor restarts it
//! after a backoff and it resumes from its checkpoint. A poison event that fails every time
//! makes the supervisor give up, which the handle reports.
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

use account::{Account, deposit};
use projections::{Faults, Handled, MemoryLedger, repeated};
use rush_actor::{
    Error, Persistence, PersistenceConfig, ProjectionHandle, ProjectionSettings, ProjectionState,
    RestartPolicy,
};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn settings(max_restarts: u32) -> ProjectionSettings {
    ProjectionSettings {
        batch_size: 4,
        restart: RestartPolicy {
            max_restarts,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            ..RestartPolicy::default()
        },
        ..ProjectionSettings::default()
    }
}

struct Setup {
    persistence: Persistence,
    handled: Handled,
    balances: Arc<Mutex<HashMap<String, i64>>>,
    faults: Arc<Faults>,
}

async fn setup() -> Setup {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    Setup {
        persistence,
        handled: Handled::default(),
        balances: Arc::default(),
        faults: Arc::default(),
    }
}

impl Setup {
    async fn spawn(&self, max_restarts: u32) -> ProjectionHandle {
        let ledger = MemoryLedger {
            name: "balances".into(),
            checkpoint_every: 1,
            counts: Arc::default(),
            balances: Arc::clone(&self.balances),
            handled: Arc::clone(&self.handled),
            faults: Arc::clone(&self.faults),
        };
        self.persistence
            .spawn_projection_with(ledger, settings(max_restarts))
            .await
            .unwrap()
    }

    async fn deposits(&self, range: std::ops::RangeInclusive<u64>) {
        for n in range {
            self.persistence
                .entity::<Account>("acc")
                .ask(deposit(n, n))
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_restarts_the_runner_which_resumes_from_its_checkpoint() {
    let s = setup().await;
    s.faults.error_at.store(6, Ordering::SeqCst);
    let projection = s.spawn(5).await;
    s.deposits(1..=10).await;
    projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(projection.restarts(), 1);
    assert_eq!(projection.state(), ProjectionState::Running);
    // A checkpoint after every event: only the failing event itself is delivered again.
    assert_eq!(repeated(&s.handled), vec![6]);
    assert_eq!(s.balances.lock().unwrap()["acc"], 55 + 6);
    projection.stop().await.unwrap();
    s.persistence.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_panic_restarts_the_runner_and_later_events_still_arrive() {
    let s = setup().await;
    s.deposits(1..=5).await;
    s.faults.panic_at.store(3, Ordering::SeqCst);
    let projection = s.spawn(5).await;
    projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(projection.restarts(), 1);
    // The restarted runner follows new commits too.
    s.deposits(6..=8).await;
    let lag = projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!((lag.checkpoint, lag.head), (8, 8));
    assert_eq!(repeated(&s.handled), vec![3]);
    assert_eq!(s.handled.lock().unwrap().len(), 9);
    projection.stop().await.unwrap();
    assert_eq!(projection.state(), ProjectionState::Stopped);
    s.persistence.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_makes_the_supervisor_give_up_after_its_restart_limit() {
    let s = setup().await;
    s.deposits(1..=4).await;
    s.faults.always_error_at.store(2, Ordering::SeqCst);
    let projection = s.spawn(3).await;
    let err = projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ProjectionUnavailable { reason, .. } if reason.contains("poison event at offset 2")),
        "{err}"
    );
    assert!(matches!(projection.state(), ProjectionState::GaveUp { .. }));
    assert_eq!(projection.restarts(), 3);
    // The first event is checkpointed; the poison one never is.
    assert_eq!(projection.lag().unwrap().checkpoint, 1);
    assert_eq!(s.handled.lock().unwrap().as_slice(), &[1, 2, 2, 2, 2]);
    projection.stop().await.unwrap();
    s.persistence.shutdown().await.unwrap();
}
