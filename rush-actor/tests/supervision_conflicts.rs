//! A write conflict (a stale second writer) restarts the actor so it reloads, without
//! spending the restart budget: an entity shared by two extensions keeps serving.
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
use rush_store::Backend;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn write_conflicts_do_not_spend_the_restart_budget() {
    let config = PersistenceConfig {
        // Not one counted restart is allowed.
        restart: RestartPolicy {
            max_restarts: 0,
            ..RestartPolicy::default()
        },
        ask_timeout: Duration::from_secs(5),
        ..PersistenceConfig::default()
    };
    let memory: Arc<dyn Backend> = Arc::new(engine_under_test::fresh());
    let first = Persistence::open_shared(memory.clone(), config.clone())
        .await
        .unwrap();
    let second = Persistence::open_shared(memory.clone(), config.clone())
        .await
        .unwrap();
    let a = first.get_or_spawn::<Account>("shared").await.unwrap();
    let b = second.get_or_spawn::<Account>("shared").await.unwrap();
    let mut acknowledged = 0u64;
    for round in 0..10u64 {
        for (who, tag) in [(&a, 2 * round), (&b, 2 * round + 1)] {
            match who.ask(deposit(1, tag)).await {
                Ok(_) => acknowledged += 1,
                // The stale writer's command wrote nothing; it reloads for the next one.
                Err(CommandError::Failed(Error::Journal { .. })) => {}
                Err(other) => panic!("round {round}: {other}"),
            }
        }
    }
    let restarts = a.metrics().unwrap().restarts + b.metrics().unwrap().restarts;
    assert!(restarts >= 5, "conflicts restarted the actors: {restarts}");
    // What was acknowledged is what the journal holds. (A read-only command on whichever
    // actor went stale last would answer its old state: only a write finds the conflict.)
    let third = Persistence::open_shared(memory, config).await.unwrap();
    let fresh = third.get_or_spawn::<Account>("shared").await.unwrap();
    assert_eq!(fresh.ask(Cmd::Balance).await.unwrap(), acknowledged);
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
    third.shutdown().await.unwrap();
}
