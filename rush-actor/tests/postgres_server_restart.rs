//! PostgreSQL stopped at once (`pg_ctl -m immediate`: SIGQUIT) under load and started again
//! (issue 11): while it is away, commands fail with typed errors; every acknowledged event
//! is in the journal afterwards; and the same actors serve again once it is back, restarted
//! by their supervisor from what is durable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/postgres_server.rs"]
mod postgres_server;

#[path = "support/account.rs"]
mod account;

use account::{Account, AccountEvent, deposit};
use rush_actor::{CommandError, Error, Persistence, PersistenceConfig, RestartPolicy};
use rush_store::{Backend, PostgresManager, Store};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ENTITIES: usize = 20;

fn config() -> PersistenceConfig {
    PersistenceConfig {
        // Enough restarts, with a short backoff, to outlast the outage.
        restart: RestartPolicy {
            max_restarts: 10_000,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
            ..RestartPolicy::default()
        },
        ask_timeout: Duration::from_secs(20),
        ..PersistenceConfig::default()
    }
}

/// Whether `error` is one a caller can act on while the server is away: the journal's
/// typed error naming the entity, its recovery failing, or the entity restarting.
fn typed(error: &CommandError<String>) -> bool {
    matches!(
        error,
        CommandError::Failed(
            Error::Journal { .. }
                | Error::RecoveryFailed { .. }
                | Error::Stopped { .. }
                | Error::Unavailable { .. }
                | Error::Timeout { .. }
        )
    )
}

/// Waits until `done` holds, looking every 20 ms; fails after 60 s.
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_serve_again_after_the_server_restarts_under_load() {
    let Some(mut server) = postgres_server::start() else {
        return;
    };
    if server.pid.is_none() {
        println!("skipped: RUSH_TEST_POSTGRES_URL names a server this test cannot restart");
        return;
    }
    let engine: Arc<dyn Backend> =
        Arc::new(PostgresManager::connect(&server.url, "restart").unwrap());
    let persistence = Persistence::open_shared(engine.clone(), config())
        .await
        .unwrap();

    // Each driver sends deposits of 1 with rising tags, one at a time, and keeps the tags
    // acknowledged; a failed command's outcome is unknown, so the next one moves on.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<Mutex<Vec<u64>>>> =
        Arc::new((0..ENTITIES).map(|_| Mutex::new(Vec::new())).collect());
    let untyped: Arc<Mutex<Vec<String>>> = Arc::default();
    let failures = Arc::new(AtomicUsize::new(0));
    let drivers: Vec<_> = (0..ENTITIES)
        .map(|i| {
            let entity = persistence.entity::<Account>(&format!("r{i}"));
            let (stop, acked, untyped, failures) = (
                stop.clone(),
                acked.clone(),
                untyped.clone(),
                failures.clone(),
            );
            tokio::spawn(async move {
                let mut tag = 0;
                while !stop.load(Ordering::SeqCst) {
                    tag += 1;
                    match entity.ask(deposit(1, tag)).await {
                        Ok(_) => acked[i].lock().unwrap().push(tag),
                        Err(error) => {
                            failures.fetch_add(1, Ordering::SeqCst);
                            if !typed(&error) {
                                untyped.lock().unwrap().push(format!("{error:?}"));
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect();
    let acked_count = |acked: &Arc<Vec<Mutex<Vec<u64>>>>| -> Vec<usize> {
        acked.iter().map(|a| a.lock().unwrap().len()).collect()
    };

    // Load runs: every actor has acknowledged a few commands.
    wait_for("every actor to serve", || {
        acked_count(&acked).iter().all(|&n| n >= 5)
    })
    .await;
    let before = failures.load(Ordering::SeqCst);
    let server = tokio::task::spawn_blocking(move || {
        server.stop_immediately();
        server
    })
    .await
    .unwrap();
    // Commands fail while the server is away (those in flight at once; later ones wait
    // in their restarting actor's queue, up to the ask timeout).
    wait_for("commands to fail while the server is away", || {
        failures.load(Ordering::SeqCst) > before
    })
    .await;
    let server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.start_again();
        server
    })
    .await
    .unwrap();

    // Every actor serves again: ten more acknowledgements each.
    let back = acked_count(&acked);
    wait_for("every actor to serve again", || {
        let now = acked_count(&acked);
        now.iter().zip(&back).all(|(now, back)| *now >= back + 10)
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for driver in drivers {
        driver.await.unwrap();
    }
    persistence.shutdown().await.unwrap();
    let untyped = untyped.lock().unwrap().clone();
    assert!(untyped.is_empty(), "untyped errors: {untyped:?}");

    // Every acknowledged event is in the journal, in order; the actor's state is the
    // journal's.
    let check = PostgresManager::connect(&server.url, "restart").unwrap();
    let check: Arc<dyn Backend> = Arc::new(check);
    tokio::task::spawn_blocking(move || {
        for (i, acked) in acked.iter().enumerate() {
            let store = Store::<Account>::with_backend(
                "accounts",
                &format!("r{i}"),
                check.clone(),
                None,
                true,
            )
            .unwrap();
            let journal: Vec<u64> = store
                .events(0, u64::MAX)
                .unwrap()
                .into_iter()
                .map(|event| match event {
                    AccountEvent::Deposited { tag, .. } => tag,
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert!(journal.windows(2).all(|w| w[0] < w[1]), "r{i}: {journal:?}");
            for tag in acked.lock().unwrap().iter() {
                assert!(journal.contains(tag), "r{i}: acknowledged {tag} lost");
            }
            let state = store.recover().unwrap().unwrap();
            assert_eq!(state.balance, journal.len() as u64, "r{i}");
        }
    })
    .await
    .unwrap();
}
