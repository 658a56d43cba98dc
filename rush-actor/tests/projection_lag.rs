//! The lag metric: while events wait for the projection, it reports how many offsets and
//! how much time the checkpoint is behind the head; once caught up, zero.
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
use rush_actor::{
    Delivery, Error, Persistence, PersistenceConfig, Projection, ProjectionError, ProjectionHandle,
    ProjectionLag, ProjectionSettings, ProjectionTx,
};
use rush_store::StoredEvent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Handles an event only when the test hands it a permit.
struct Gated {
    gate: Arc<Semaphore>,
}

impl Projection for Gated {
    type Actor = Account;

    fn name(&self) -> &str {
        "gated"
    }

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }

    async fn handle(
        &mut self,
        _event: &StoredEvent<AccountEvent>,
        _tx: &mut ProjectionTx,
    ) -> Result<(), ProjectionError> {
        self.gate.acquire().await?.forget();
        Ok(())
    }
}

async fn lag_reaches(projection: &ProjectionHandle, checkpoint: u64) -> ProjectionLag {
    for _ in 0..500 {
        let lag = projection.lag().unwrap();
        if lag.checkpoint == checkpoint {
            return lag;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "checkpoint never reached {checkpoint}: {:?}",
        projection.lag()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_counts_offsets_and_time_behind_until_the_projection_catches_up() {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    for n in 1..=10u64 {
        persistence
            .entity::<Account>(if n % 2 == 0 { "x" } else { "y" })
            .ask(deposit(n, n))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let gate = Arc::new(Semaphore::new(0));
    let settings = ProjectionSettings {
        batch_size: 4,
        ..ProjectionSettings::default()
    };
    let projection = persistence
        .spawn_projection_with(
            Gated {
                gate: Arc::clone(&gate),
            },
            settings,
        )
        .await
        .unwrap();

    let lag = projection.lag().unwrap();
    assert_eq!((lag.checkpoint, lag.head, lag.offsets_behind), (0, 10, 10));
    assert!(
        lag.time_behind.unwrap() >= Duration::from_millis(100),
        "{lag:?}"
    );
    let err = projection
        .wait_until_caught_up(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ProjectionBehind {
                offsets_behind: 10,
                ..
            }
        ),
        "{err}"
    );

    // One page (offsets 1-4) through: the oldest pending event is now offset 5.
    gate.add_permits(4);
    let lag = lag_reaches(&projection, 4).await;
    assert_eq!((lag.head, lag.offsets_behind), (10, 6));
    assert!(
        lag.time_behind.unwrap() >= Duration::from_millis(100),
        "{lag:?}"
    );

    gate.add_permits(6);
    let lag = projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        lag,
        ProjectionLag {
            offsets_behind: 0,
            time_behind: Some(Duration::ZERO),
            checkpoint: 10,
            head: 10
        }
    );

    // A new event puts it behind by one until it is handled.
    persistence
        .entity::<Account>("x")
        .ask(deposit(1, 11))
        .await
        .unwrap();
    gate.add_permits(1);
    let lag = projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!((lag.checkpoint, lag.offsets_behind), (11, 0));
    projection.stop().await.unwrap();
    persistence.shutdown().await.unwrap();
}
