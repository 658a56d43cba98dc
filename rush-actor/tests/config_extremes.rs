//! No configuration value panics: a property test opens the extension with extreme values
//! of every setting (zeros, maxima, NaN and infinite factors), runs commands, a crash, a
//! projection and a saga, and shuts down. A panic anywhere (the test, an actor, a spawned
//! task) fails it; a setting may make a call time out or fail, never panic.
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
#[path = "support/scripted.rs"]
mod scripted;

use account::{Account, AccountEvent, Cmd, deposit};
use proptest::prelude::*;
use rush_actor::{
    Delivery, Persistence, PersistenceConfig, Projection, ProjectionError, ProjectionSettings,
    ProjectionTx, RestartPolicy, RetryPolicy, Sagas, SnapshotPolicy, StepError,
};
use rush_store::{Durability, StoredEvent};
use scripted::Scripted;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The longest the test waits for any one call: settings may make calls slow, not stuck.
const PATIENCE: Duration = Duration::from_millis(300);

/// Panics other than the one `Cmd::Panic` injects on purpose.
static UNEXPECTED_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_unexpected_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or_default();
            if !message.contains("injected crash") {
                UNEXPECTED_PANICS.fetch_add(1, Ordering::SeqCst);
                previous(info);
            }
        }));
    });
}

fn durations() -> impl Strategy<Value = Duration> {
    prop::sample::select(vec![
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(1),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ])
}

fn factors() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![
        0.0,
        -1.0,
        0.5,
        1.0,
        2.0,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ])
}

fn counts() -> impl Strategy<Value = usize> {
    prop::sample::select(vec![0, 1, 2, usize::MAX])
}

fn restart_policies() -> impl Strategy<Value = RestartPolicy> {
    (
        prop::sample::select(vec![0u32, 1, u32::MAX]),
        durations(),
        durations(),
        durations(),
        factors(),
        factors(),
        durations(),
    )
        .prop_map(
            |(max_restarts, within, min_backoff, max_backoff, multiplier, jitter, cool_down)| {
                RestartPolicy {
                    max_restarts,
                    within,
                    min_backoff,
                    max_backoff,
                    multiplier,
                    jitter,
                    cool_down,
                }
            },
        )
}

fn snapshot_policies() -> impl Strategy<Value = SnapshotPolicy> {
    (
        prop::sample::select(vec![None, Some(0u64), Some(1), Some(u64::MAX)]),
        counts(),
        any::<bool>(),
    )
        .prop_map(|(every, keep, delete_covered_events)| SnapshotPolicy {
            every,
            keep,
            delete_covered_events,
        })
}

fn configs() -> impl Strategy<Value = PersistenceConfig> {
    (
        snapshot_policies(),
        any::<bool>(),
        prop::sample::select(vec![Durability::Immediate, Durability::Periodic]),
        restart_policies(),
        counts(),
        counts(),
        prop::option::of(durations()),
        durations(),
    )
        .prop_map(
            |(
                snapshots,
                encrypted,
                durability,
                restart,
                max_concurrent_recoveries,
                max_pending_commands,
                passivate_after,
                ask_timeout,
            )| PersistenceConfig {
                snapshots,
                encryption_key: encrypted.then(|| [7u8; 32].into()),
                durability,
                restart,
                max_concurrent_recoveries,
                max_pending_commands,
                passivate_after,
                ask_timeout,
                ..PersistenceConfig::default()
            },
        )
}

fn projection_settings() -> impl Strategy<Value = ProjectionSettings> {
    (counts(), restart_policies(), durations()).prop_map(|(batch_size, restart, poll_interval)| {
        ProjectionSettings {
            batch_size,
            restart,
            poll_interval,
        }
    })
}

fn retry_policies() -> impl Strategy<Value = RetryPolicy> {
    (
        prop::sample::select(vec![0u32, 1, u32::MAX]),
        durations(),
        durations(),
        factors(),
        factors(),
    )
        .prop_map(
            |(max_retries, initial_delay, max_delay, multiplier, jitter)| RetryPolicy {
                max_retries,
                initial_delay,
                max_delay,
                multiplier,
                jitter,
            },
        )
}

/// Counts events, at-least-once, checkpointing as the delivery says.
struct Count {
    delivery: Delivery,
}

impl Projection for Count {
    type Actor = Account;
    fn name(&self) -> &str {
        "count"
    }
    fn delivery(&self) -> Delivery {
        self.delivery
    }
    async fn handle(
        &mut self,
        _event: &StoredEvent<AccountEvent>,
        _tx: &mut ProjectionTx,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
}

async fn patience<F: std::future::IntoFuture>(
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(PATIENCE, future).await
}

async fn exercise(
    config: PersistenceConfig,
    settings: ProjectionSettings,
    checkpoint_every: u64,
    retry: RetryPolicy,
) {
    // Every delay formula a policy feeds, at the extremes of its inputs.
    for attempt in [0, 1, 64, u32::MAX] {
        for unit in [0.0, 0.5, 1.0, -1.0, f64::NAN] {
            let _ = config.restart.backoff(attempt, unit);
            let _ = settings.restart.backoff(attempt, unit);
            let _ = retry.delay(attempt, unit);
        }
    }
    let Ok(opened) = patience(Persistence::open(engine_under_test::fresh(), config)).await else {
        panic!("open is stuck");
    };
    let persistence = opened.unwrap();
    let account = persistence.entity::<Account>("extreme");
    let _ = patience(account.ask(deposit(1, 1))).await;
    let _ = patience(account.ask(Cmd::Panic)).await;
    let _ = patience(account.ask(deposit(1, 2))).await;
    let _ = patience(persistence.get_or_spawn::<Account>("other")).await;
    let _ = patience(account.ask(Cmd::Balance)).await;

    let delivery = Delivery::AtLeastOnce { checkpoint_every };
    if let Ok(Ok(projection)) =
        patience(persistence.spawn_projection_with(Count { delivery }, settings)).await
    {
        let _ = patience(projection.wait_until_caught_up(Duration::MAX)).await;
        let _ = patience(projection.wait_until_caught_up(Duration::ZERO)).await;
        let _ = patience(projection.stop()).await;
    }

    if let Ok(sagas) = Sagas::open(&persistence) {
        let mut saga = Scripted::new(&["flaky"], |_, _, before| {
            if before == 0 {
                Err(StepError::Retryable("once".into()))
            } else {
                Ok(())
            }
        });
        saga.retry = retry;
        sagas.register(saga);
        let _ = patience(sagas.start::<Scripted>("s", String::new())).await;
    }

    let shutdown = tokio::time::timeout(Duration::from_secs(5), persistence.shutdown()).await;
    assert!(shutdown.is_ok(), "shutdown is stuck");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_setting_makes_anything_panic(
        config in configs(),
        settings in projection_settings(),
        checkpoint_every in prop::sample::select(vec![0u64, 1, u64::MAX]),
        retry in retry_policies(),
    ) {
        count_unexpected_panics();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(exercise(config, settings, checkpoint_every, retry));
        runtime.shutdown_timeout(Duration::from_secs(1));
        prop_assert_eq!(UNEXPECTED_PANICS.load(Ordering::SeqCst), 0);
    }
}
