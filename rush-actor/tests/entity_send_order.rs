//! Send order survives a crash: commands one caller pipelined behind a command whose
//! handler panics reach the next incarnation in the order they were sent.
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

use account::{Account, AccountEvent, Cmd, deposit};
use rush_actor::{CommandError, Error, Persistence, PersistenceConfig, RestartPolicy};
use rush_store::Store;
use std::time::Duration;

/// Trials run: out-of-order delivery showed in about a quarter of them, so 40 trials all in
/// order by chance is below one in 100 000.
const TRIALS: usize = 40;
/// Commands pipelined behind the crash in each trial.
const BEHIND: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pipelined_behind_a_crash_run_in_send_order() {
    let config = PersistenceConfig {
        restart: RestartPolicy {
            max_restarts: u32::MAX,
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..RestartPolicy::default()
        },
        ask_timeout: Duration::from_secs(10),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::fresh(), config)
        .await
        .unwrap();
    let mut out_of_order = 0;
    for trial in 0..TRIALS {
        let id = format!("order-{trial}");
        let account = persistence.get_or_spawn::<Account>(&id).await.unwrap();
        // One caller, one task: the asks are created (and so sent) in this order and then
        // polled together.
        let mut asks = vec![account.ask(Cmd::Panic)];
        asks.extend((1..=BEHIND).map(|tag| account.ask(deposit(1, tag))));
        let replies = futures::future::join_all(asks).await;
        let mut replies = replies.into_iter();
        let crashed = replies.next().unwrap();
        assert!(
            matches!(crashed, Err(CommandError::Failed(Error::Stopped { .. }))),
            "{crashed:?}"
        );
        for reply in replies {
            reply.unwrap();
        }
        let tags: Vec<u64> = Store::<Account>::with_backend(
            "accounts",
            &id,
            persistence.database().engine().unwrap(),
            None,
            true,
        )
        .unwrap()
        .events(0, u64::MAX)
        .unwrap()
        .into_iter()
        .map(|event| match event {
            AccountEvent::Deposited { tag, .. } => tag,
            other => panic!("{other:?}"),
        })
        .collect();
        if tags != (1..=BEHIND).collect::<Vec<_>>() {
            out_of_order += 1;
        }
    }
    assert_eq!(out_of_order, 0, "trials out of send order, of {TRIALS}");
    persistence.shutdown().await.unwrap();
}
