//! Deadlines: every wait of a caller ends by its ask timeout, also while the entity is
//! still recovering.
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
#[path = "support/backends.rs"]
mod backends;

use account::{Account, AccountEvent, Cmd};
use rush_actor::{CommandError, Error, Persistence, PersistenceConfig};
use rush_store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_slow_recovery_ends_at_the_ask_timeout() {
    let memory = engine_under_test::fresh();
    Store::<Account>::new("accounts", "slow", memory.clone(), None, true)
        .unwrap()
        .persist(&AccountEvent::Deposited { amount: 1, tag: 1 })
        .unwrap();
    let slow = backends::SlowScans::new(Arc::new(memory), Duration::from_secs(3));
    let config = PersistenceConfig {
        ask_timeout: TIMEOUT,
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open_shared(slow, config).await.unwrap();

    let started = Instant::now();
    let spawned = persistence.get_or_spawn::<Account>("slow").await;
    assert!(matches!(spawned, Err(Error::Timeout { .. })), "{spawned:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let asked = persistence
        .entity::<Account>("slow")
        .ask(Cmd::Balance)
        .await;
    assert!(
        matches!(asked, Err(CommandError::Failed(Error::Timeout { .. }))),
        "{asked:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    persistence.shutdown().await.unwrap();
}
