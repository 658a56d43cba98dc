//! After the restart limit: a given-up entity is refused (`Unavailable`) until it is revived
//! by hand or its cool-down ends; then it is released from the entity table (memory does
//! not grow with given-up entities) and its next command starts it afresh.
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
use rush_actor::{CommandError, Error, Persistence, PersistenceConfig, RestartPolicy};
use std::time::{Duration, Instant};

fn gives_up_at_once(cool_down: Duration) -> PersistenceConfig {
    PersistenceConfig {
        restart: RestartPolicy {
            max_restarts: 0,
            cool_down,
            ..RestartPolicy::default()
        },
        ask_timeout: Duration::from_secs(5),
        ..PersistenceConfig::default()
    }
}

async fn give_up(persistence: &Persistence, id: &str) {
    let account = persistence.get_or_spawn::<Account>(id).await.unwrap();
    account.ask(deposit(7, 1)).await.unwrap();
    assert!(account.ask(Cmd::Panic).await.is_err());
    let refused = account.ask(Cmd::Balance).await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Failed(Error::Unavailable { .. }))
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_given_up_entity_serves_again_once_revived() {
    let persistence = Persistence::open(
        engine_under_test::fresh(),
        gives_up_at_once(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    assert!(
        !persistence.revive::<Account>("r").unwrap(),
        "nothing to revive"
    );
    give_up(&persistence, "r").await;
    assert!(persistence.revive::<Account>("r").unwrap());
    assert!(
        persistence.entity_metrics::<Account>("r").is_none(),
        "released"
    );
    let account = persistence.entity::<Account>("r");
    assert_eq!(
        account.ask(Cmd::Balance).await.unwrap(),
        7,
        "from the journal"
    );
    assert_eq!(account.ask(deposit(1, 2)).await.unwrap(), 8);
    // A fresh restart budget: it gives up again only after a new failure.
    assert!(!persistence.revive::<Account>("r").unwrap());
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_given_up_entity_is_released_after_its_cool_down() {
    let persistence = Persistence::open(
        engine_under_test::fresh(),
        gives_up_at_once(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    give_up(&persistence, "c").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while persistence.entity_metrics::<Account>("c").is_some() {
        assert!(Instant::now() < deadline, "never released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let account = persistence.entity::<Account>("c");
    assert_eq!(account.ask(Cmd::Balance).await.unwrap(), 7);
    persistence.shutdown().await.unwrap();
}
