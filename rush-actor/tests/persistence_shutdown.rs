//! Shutdown: afterwards every call is refused with `Error::Shutdown` at once, however long
//! the ask timeout; commands accepted before it are finished.
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
use rush_actor::{CommandError, Error, Persistence, PersistenceConfig};
use std::time::Duration;

/// Far longer than the test may take: an answer must not wait for it.
const LONG: Duration = Duration::from_secs(600);
/// What "at once" allows.
const AT_ONCE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_every_call_is_refused_at_once() {
    let config = PersistenceConfig {
        ask_timeout: LONG,
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::fresh(), config)
        .await
        .unwrap();
    let running = persistence
        .get_or_spawn::<Account>("running")
        .await
        .unwrap();
    running.ask(deposit(5, 1)).await.unwrap();
    persistence.shutdown().await.unwrap();

    let asked = tokio::time::timeout(AT_ONCE, running.ask(Cmd::Balance)).await;
    assert!(
        matches!(asked, Ok(Err(CommandError::Failed(Error::Shutdown)))),
        "{asked:?}"
    );
    let fresh = persistence.entity::<Account>("never-started");
    let asked = tokio::time::timeout(AT_ONCE, fresh.ask(Cmd::Balance)).await;
    assert!(
        matches!(asked, Ok(Err(CommandError::Failed(Error::Shutdown)))),
        "{asked:?}"
    );
    let spawned = tokio::time::timeout(AT_ONCE, persistence.get_or_spawn::<Account>("x")).await;
    assert!(matches!(spawned, Ok(Err(Error::Shutdown))), "{spawned:?}");
    let spawned = tokio::time::timeout(AT_ONCE, persistence.spawn::<Account>("y")).await;
    assert!(matches!(spawned, Ok(Err(Error::Shutdown))), "{spawned:?}");
    assert_eq!(persistence.running_entities(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_accepted_before_shutdown_are_finished() {
    let config = PersistenceConfig {
        ask_timeout: LONG,
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::fresh(), config)
        .await
        .unwrap();
    let account = persistence.get_or_spawn::<Account>("busy").await.unwrap();
    // Joined in this order, every ask is admitted (its first poll) before shutdown starts.
    let asks = futures::future::join_all((1..=40).map(|tag| account.ask(deposit(1, tag))));
    let (replies, shut) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(asks, persistence.shutdown())
    })
    .await
    .expect("shutdown and the asks finish");
    shut.unwrap();
    let balances: Vec<u64> = replies.into_iter().map(Result::unwrap).collect();
    assert_eq!(balances, (1..=40).collect::<Vec<u64>>());
}
