//! Faults under the actors: a full disk, a failed commit, a failed flush and a torn group
//! commit (the store's `Faulty` backend, shared through `#[path]`). For each, on memory
//! and on sled: every command in flight when the fault hits is answered with a journal
//! error naming it; every acknowledged event stays, unchanged and in order; the
//! supervisor restarts each entity from the journal once the disk is back, and later
//! commands succeed with the state the journal holds.
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

use account::{Account, AccountEvent, Cmd, deposit};
use rush_actor::{CommandError, Error, Persistence, PersistenceConfig, RestartPolicy};
use rush_store::{Backend, Store};
use std::sync::Arc;
use std::time::Duration;
use store_backends::{ENOSPC, Faulty, each_backend};

const ENTITIES: usize = 4;
const ACKED: u64 = 5;
const KEY: [u8; 32] = [4; 32];

#[derive(Debug, Clone, Copy)]
enum Fault {
    DiskFull,
    CommitError,
    FlushError,
    /// The first group commit keeps this many ops and fails; every later one fails.
    Torn(usize),
}

impl Fault {
    fn inject(self, faulty: &Faulty) {
        match self {
            Fault::DiskFull => faulty.set_disk_full(true),
            Fault::CommitError => faulty.fail_commits_after(0),
            Fault::FlushError => faulty.fail_flushes_after(0),
            Fault::Torn(keep) => {
                faulty.fail_commits_after(1);
                faulty.tear_next_commit(keep);
            }
        }
    }

    /// Whether events of the failed commands may have reached the journal.
    fn may_land(self) -> bool {
        matches!(self, Fault::FlushError | Fault::Torn(_))
    }
}

fn config() -> PersistenceConfig {
    PersistenceConfig {
        encryption_key: Some(KEY.into()),
        restart: RestartPolicy {
            max_restarts: 20,
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            ..RestartPolicy::default()
        },
        ask_timeout: Duration::from_secs(10),
        ..PersistenceConfig::default()
    }
}

fn tags(backend: &Arc<dyn Backend>, entity: &str) -> Vec<u64> {
    let store =
        Store::<Account>::with_backend("accounts", entity, backend.clone(), Some(&KEY), true)
            .unwrap();
    store
        .events(0, u64::MAX)
        .unwrap()
        .into_iter()
        .map(|e| match e {
            AccountEvent::Deposited { amount: 1, tag } => tag,
            other => panic!("{entity}: unexpected event {other:?}"),
        })
        .collect()
}

async fn scenario(fault: Fault, inner: Arc<dyn Backend>, name: &str) {
    let faulty = Faulty::new(inner);
    let backend: Arc<dyn Backend> = faulty.clone();
    let persistence = Persistence::open_shared(backend.clone(), config())
        .await
        .unwrap();
    let ids: Vec<String> = (0..ENTITIES).map(|i| format!("f{i}")).collect();
    let mut refs = Vec::new();
    for id in &ids {
        let entity = persistence.get_or_spawn::<Account>(id).await.unwrap();
        for tag in 1..=ACKED {
            assert_eq!(entity.ask(deposit(1, tag)).await.unwrap(), tag);
        }
        refs.push(entity);
    }

    fault.inject(&faulty);
    let in_flight: Vec<_> = refs
        .iter()
        .map(|entity| {
            let entity = entity.clone();
            tokio::spawn(async move { entity.ask(deposit(1, ACKED + 1)).await })
        })
        .collect();
    for (task, id) in in_flight.into_iter().zip(&ids) {
        match task.await.unwrap() {
            Err(CommandError::Failed(Error::Journal { entity, source }))
                if source.to_string().contains(ENOSPC) =>
            {
                assert!(entity.ends_with(id.as_str()), "{entity}");
            }
            other => panic!("{name} {fault:?} {id}: {other:?}"),
        }
    }
    assert!(faulty.injected() >= 1, "{name} {fault:?}: the fault fired");
    faulty.heal();

    let mut total_landed = 0;
    for (entity, id) in refs.iter().zip(&ids) {
        let journal = tags(&backend, id);
        // Acknowledged events first, unchanged; then at most the failed command's event.
        assert_eq!(
            journal[..ACKED as usize],
            (1..=ACKED).collect::<Vec<_>>(),
            "{name} {fault:?} {id}"
        );
        let landed = journal.len() as u64 - ACKED;
        assert!(landed <= 1, "{name} {fault:?} {id}: {journal:?}");
        if landed == 1 {
            assert!(fault.may_land(), "{name} {fault:?} {id}: {journal:?}");
        }
        total_landed += landed;
        // Restarted from the journal: its state is exactly what is durable.
        let balance = entity.ask(Cmd::Balance).await.unwrap();
        assert_eq!(balance, journal.len() as u64, "{name} {fault:?} {id}");
        assert_eq!(
            entity.ask(deposit(1, 100)).await.unwrap(),
            balance + 1,
            "{name} {fault:?} {id}: commands succeed again"
        );
        let metrics = entity.metrics().unwrap();
        assert!(metrics.restarts >= 1, "{name} {fault:?} {id}: restarted");
    }
    // What the fault let through: a failed flush comes after every commit; a tear
    // keeps a prefix of the first group's events.
    match fault {
        Fault::FlushError => assert_eq!(total_landed, ENTITIES as u64, "{name}"),
        Fault::Torn(keep) if keep > 0 => assert!(total_landed >= 1, "{name} {fault:?}"),
        _ => assert_eq!(total_landed, 0, "{name} {fault:?}"),
    }
    persistence.shutdown().await.unwrap();

    for id in &ids {
        let store =
            Store::<Account>::with_backend("accounts", id, backend.clone(), Some(&KEY), true)
                .unwrap();
        let report = store.verify_integrity().unwrap();
        for error in &report.integrity_errors {
            // A torn group commit leaves its landed events without an offset, nothing else.
            assert!(
                matches!(fault, Fault::Torn(_))
                    && error.reason.contains("no offset in the collection log")
                    && error.record.starts_with(&format!("event {} ", ACKED + 1)),
                "{name} {fault:?} {id}: {error}"
            );
        }
    }
}

async fn each(fault: Fault) {
    for db in each_backend() {
        scenario(fault, db.backend.clone(), db.name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_commands_in_flight_and_entities_come_back() {
    each(Fault::DiskFull).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_commands_in_flight_and_entities_come_back() {
    each(Fault::CommitError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_fails_commands_in_flight_and_entities_come_back() {
    each(Fault::FlushError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_group_commit_keeps_acknowledged_events_and_entities_come_back() {
    for keep in [0, 1, 3] {
        each(Fault::Torn(keep)).await;
    }
}
