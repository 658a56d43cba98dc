//! Commands: persist-then-reply, rejections, unserializable events, commands sent during
//! recovery, the pending bound.
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

use account::{Account, AccountEvent, Cmd, deposit};
use rush_actor::{CommandError, Error, Persistence, PersistenceConfig};
use rush_store::{Backend, Store};
use std::sync::Arc;
use std::time::Duration;

fn journal(backend: &Arc<dyn Backend>, id: &str) -> Vec<AccountEvent> {
    Store::<Account>::with_backend("accounts", id, backend.clone(), None, true)
        .unwrap()
        .events(0, u64::MAX)
        .unwrap()
}

#[tokio::test]
async fn the_reply_comes_only_after_the_event_is_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(engine_under_test::at(dir.path()));
    let persistence = Persistence::open_shared(backend.clone(), PersistenceConfig::default())
        .await
        .unwrap();
    let alice = persistence.get_or_spawn::<Account>("alice").await.unwrap();
    for i in 1..=20u64 {
        assert_eq!(alice.ask(deposit(10, i)).await.unwrap(), 10 * i);
        // Every acknowledged event is already readable from the journal by anyone.
        assert_eq!(journal(&backend, "alice").len() as u64, i);
    }
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rejected_command_persists_nothing_and_the_actor_goes_on() {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    let backend = persistence.database().engine().unwrap();
    let bob = persistence.get_or_spawn::<Account>("bob").await.unwrap();
    bob.ask(deposit(50, 1)).await.unwrap();
    let err = bob
        .ask(Cmd::Withdraw { amount: 80, tag: 2 })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CommandError::Rejected(m) if m.contains("insufficient")),
        "{err}"
    );
    assert!(matches!(
        bob.ask(deposit(0, 3)).await,
        Err(CommandError::Rejected(_))
    ));
    assert_eq!(
        bob.ask(Cmd::Withdraw { amount: 20, tag: 4 }).await.unwrap(),
        30
    );
    assert_eq!(journal(&backend, "bob").len(), 2);
    assert_eq!(bob.metrics().unwrap().commands_rejected, 2);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_event_that_cannot_be_stored_is_refused_and_the_actor_goes_on() {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    let carol = persistence.get_or_spawn::<Account>("carol").await.unwrap();
    carol.ask(deposit(5, 1)).await.unwrap();
    let err = carol
        .ask(Cmd::Note(vec![0; rush_store::MAX_EVENT_SIZE + 10]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Failed(Error::Journal { .. })),
        "{err}"
    );
    assert_eq!(carol.ask(deposit(5, 2)).await.unwrap(), 10);
    assert_eq!(
        carol.metrics().unwrap().incarnations,
        1,
        "no restart for a refused event"
    );
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn several_events_of_one_command_are_persisted_atomically() {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    let backend = persistence.database().engine().unwrap();
    let dave = persistence.get_or_spawn::<Account>("dave").await.unwrap();
    assert_eq!(dave.ask(Cmd::DepositTwice { amount: 7 }).await.unwrap(), 14);
    assert_eq!(journal(&backend, "dave").len(), 2);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn commands_queued_while_recovering_are_handled_in_send_order() {
    let memory = engine_under_test::fresh();
    {
        let mut store =
            Store::<Account>::new("accounts", "frank", memory.clone(), None, true).unwrap();
        store
            .persist_batch(
                &(1..=2000)
                    .map(|tag| AccountEvent::Deposited { amount: 1, tag })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
    }
    let slow = backends::SlowScans::new(Arc::new(memory.clone()), Duration::from_millis(30));
    let persistence = Persistence::open_shared(slow.clone(), PersistenceConfig::default())
        .await
        .unwrap();
    let frank = persistence.entity::<Account>("frank");
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let frank = frank.clone();
        tasks.push(tokio::spawn(async move {
            frank.ask(deposit(1, 5000 + i)).await
        }));
        // Small gaps fix the send order while the actor is still recovering.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let replies: Vec<u64> = futures_all(tasks).await;
    assert_eq!(replies, (2001..=2020).collect::<Vec<u64>>());
    let events = journal(&(Arc::new(memory) as Arc<dyn Backend>), "frank");
    let tags: Vec<u64> = events[2000..]
        .iter()
        .map(|e| match e {
            AccountEvent::Deposited { tag, .. } => *tag,
            _ => 0,
        })
        .collect();
    assert_eq!(tags, (5000..5020).collect::<Vec<u64>>());
    persistence.shutdown().await.unwrap();
}

async fn futures_all(
    tasks: Vec<tokio::task::JoinHandle<Result<u64, CommandError<String>>>>,
) -> Vec<u64> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn too_many_waiting_commands_are_refused_clearly_and_the_rest_succeed() {
    let memory = engine_under_test::fresh();
    {
        let mut store =
            Store::<Account>::new("accounts", "gina", memory.clone(), None, true).unwrap();
        store
            .persist_batch(
                &(1..=1000)
                    .map(|tag| AccountEvent::Deposited { amount: 1, tag })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
    }
    let slow = backends::SlowScans::new(Arc::new(memory), Duration::from_millis(50));
    let config = PersistenceConfig {
        max_pending_commands: 5,
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open_shared(slow, config).await.unwrap();
    let gina = persistence.entity::<Account>("gina");
    let tasks: Vec<_> = (0..20u64)
        .map(|i| {
            let gina = gina.clone();
            tokio::spawn(async move { gina.ask(deposit(1, i)).await })
        })
        .collect();
    let (mut ok, mut overloaded) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CommandError::Failed(Error::Overloaded { limit: 5, .. })) => overloaded += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(overloaded > 0, "the bound was never hit");
    assert_eq!(ok + overloaded, 20);
    assert_eq!(gina.ask(Cmd::Balance).await.unwrap(), 1000 + ok);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn recovery_is_throttled() {
    let memory = engine_under_test::fresh();
    for i in 0..12 {
        let mut store =
            Store::<Account>::new("accounts", &format!("t{i}"), memory.clone(), None, true)
                .unwrap();
        store
            .persist(&AccountEvent::Deposited { amount: 1, tag: 1 })
            .unwrap();
    }
    let slow = backends::SlowScans::new(Arc::new(memory), Duration::from_millis(40));
    let config = PersistenceConfig {
        max_concurrent_recoveries: 3,
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open_shared(slow.clone(), config)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let entity = persistence.entity::<Account>(&format!("t{i}"));
            tokio::spawn(async move { entity.ask(Cmd::Balance).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 1);
    }
    let peak = slow.max_running.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=3).contains(&peak),
        "at most 3 recoveries at once, saw {peak}"
    );
    persistence.shutdown().await.unwrap();
}
