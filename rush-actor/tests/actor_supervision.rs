//! Supervision: a panic or a journal failure stops the actor, the supervisor restarts it
//! after backoff and it replays exactly what is durable; the policy gives up after its
//! limit; a recovery failure is reported and never starts a wrong state; two writers for
//! one entity never diverge.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/account.rs"]
mod account;
#[path = "../../rush-store/tests/support/backends.rs"]
mod store_backends;
use store_backends::engine_under_test;

use account::{Account, AccountEvent, Cmd, deposit};
use rush_actor::{CommandError, Error, Persistence, PersistenceConfig, RestartPolicy};
use rush_store::{Backend, Store};
use std::sync::Arc;
use std::time::Duration;

fn fast_restarts(max_restarts: u32) -> PersistenceConfig {
    PersistenceConfig {
        restart: RestartPolicy {
            max_restarts,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..RestartPolicy::default()
        },
        ask_timeout: Duration::from_secs(5),
        ..PersistenceConfig::default()
    }
}

#[tokio::test]
async fn a_panic_mid_stream_restarts_the_actor_with_exactly_the_persisted_state() {
    let dir = tempfile::tempdir().unwrap();
    let persistence = Persistence::open(engine_under_test::at(dir.path()), fast_restarts(5))
        .await
        .unwrap();
    let acc = persistence.get_or_spawn::<Account>("p1").await.unwrap();
    for i in 1..=10 {
        acc.ask(deposit(10, i)).await.unwrap();
    }
    let err = acc.ask(Cmd::Panic).await.unwrap_err();
    assert!(
        matches!(err, CommandError::Failed(Error::Stopped { .. })),
        "{err}"
    );
    // The next command waits for the restart and sees the replayed balance.
    assert_eq!(acc.ask(Cmd::Balance).await.unwrap(), 100);
    assert_eq!(acc.ask(deposit(5, 11)).await.unwrap(), 105);
    let metrics = acc.metrics().unwrap();
    assert_eq!((metrics.restarts, metrics.incarnations), (1, 2));
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn commands_queued_behind_a_crash_go_to_the_next_incarnation_and_none_is_applied_twice() {
    let persistence = Persistence::open(engine_under_test::fresh(), fast_restarts(5))
        .await
        .unwrap();
    let acc = persistence.get_or_spawn::<Account>("p2").await.unwrap();
    acc.ask(deposit(1, 1)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10u64 {
        let acc = acc.clone();
        let cmd = if i == 3 {
            Cmd::Panic
        } else {
            deposit(1, 100 + i)
        };
        tasks.push(tokio::spawn(async move { acc.ask(cmd).await }));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut acknowledged = 0u64;
    let mut stopped = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => acknowledged += 1,
            Err(CommandError::Failed(Error::Stopped { .. })) => stopped += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // Only the command that crashed the actor goes unanswered; those queued behind it
    // were handed back and delivered to the restarted actor.
    assert_eq!((acknowledged, stopped), (9, 1));
    let backend = persistence.database().engine().unwrap();
    let journal = Store::<Account>::with_backend("accounts", "p2", backend, None, true)
        .unwrap()
        .events(0, u64::MAX)
        .unwrap();
    // What was acknowledged is exactly what is journaled; what failed left nothing.
    assert_eq!(journal.len() as u64, 1 + acknowledged);
    assert_eq!(acc.ask(Cmd::Balance).await.unwrap(), 1 + acknowledged);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_restart_policy_gives_up_after_its_limit() {
    let persistence = Persistence::open(engine_under_test::fresh(), fast_restarts(2))
        .await
        .unwrap();
    let acc = persistence.get_or_spawn::<Account>("p3").await.unwrap();
    acc.ask(deposit(1, 1)).await.unwrap();
    for _ in 0..3 {
        assert!(acc.ask(Cmd::Panic).await.is_err());
    }
    let err = acc.ask(Cmd::Balance).await.unwrap_err();
    assert!(
        matches!(err, CommandError::Failed(Error::Unavailable { .. })),
        "{err}"
    );
    assert!(matches!(
        persistence.get_or_spawn::<Account>("p3").await,
        Err(Error::Unavailable { .. })
    ));
    assert_eq!(acc.metrics().unwrap().restarts, 2);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_journal_write_failure_stops_the_actor_and_it_comes_back_when_the_disk_does() {
    let memory: Arc<dyn Backend> = Arc::new(engine_under_test::fresh());
    let breakable = store_backends::Faulty::new(memory.clone());
    let persistence = Persistence::open_shared(breakable.clone(), fast_restarts(10))
        .await
        .unwrap();
    let acc = persistence.get_or_spawn::<Account>("p4").await.unwrap();
    acc.ask(deposit(10, 1)).await.unwrap();
    breakable.set_disk_full(true);
    let err = acc.ask(deposit(10, 2)).await.unwrap_err();
    assert!(
        matches!(&err, CommandError::Failed(Error::Journal { source, .. }) if source.to_string().contains("No space left")),
        "{err}"
    );
    breakable.heal();
    // Restarted from the journal: the failed deposit is not there.
    assert_eq!(acc.ask(Cmd::Balance).await.unwrap(), 10);
    assert_eq!(acc.ask(deposit(1, 3)).await.unwrap(), 11);
    assert!(acc.metrics().unwrap().restarts >= 1);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_recovery_failure_is_reported_and_no_wrong_state_is_served() {
    let memory = engine_under_test::fresh();
    {
        let mut store =
            Store::<Account>::new("accounts", "p5", memory.clone(), Some(&[1u8; 32]), true)
                .unwrap();
        store
            .persist(&AccountEvent::Deposited { amount: 99, tag: 1 })
            .unwrap();
    }
    let config = PersistenceConfig {
        encryption_key: Some([2u8; 32].into()),
        ..fast_restarts(1)
    };
    let persistence = Persistence::open(memory, config).await.unwrap();
    let err = persistence.get_or_spawn::<Account>("p5").await.unwrap_err();
    assert!(
        matches!(&err, Error::RecoveryFailed { reason, .. } if reason.contains("decrypt")),
        "{err}"
    );
    let acc = persistence.entity::<Account>("p5");
    assert!(
        acc.ask(Cmd::Balance).await.is_err(),
        "never a balance from a wrong state"
    );
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_extensions_on_one_database_never_diverge() {
    let memory: Arc<dyn Backend> = Arc::new(engine_under_test::fresh());
    let first = Persistence::open_shared(memory.clone(), fast_restarts(20))
        .await
        .unwrap();
    let second = Persistence::open_shared(memory.clone(), fast_restarts(20))
        .await
        .unwrap();
    let a = first.get_or_spawn::<Account>("shared").await.unwrap();
    let b = second.get_or_spawn::<Account>("shared").await.unwrap();
    let mut acknowledged = 0u64;
    for i in 0..20u64 {
        let who = if i % 2 == 0 { &a } else { &b };
        // A stale writer gets a conflict, stops, and its restart reads the other's events.
        if who.ask(deposit(1, i)).await.is_ok() {
            acknowledged += 1;
        }
    }
    assert!(acknowledged >= 10, "{acknowledged}");
    let journal = Store::<Account>::with_backend("accounts", "shared", memory, None, true)
        .unwrap()
        .events(0, u64::MAX)
        .unwrap();
    assert_eq!(
        journal.len() as u64,
        acknowledged,
        "every acknowledged deposit once, nothing else"
    );
    let restarts = a.metrics().unwrap().restarts + b.metrics().unwrap().restarts;
    assert!(restarts >= 1, "a conflict stopped an actor");
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
}
