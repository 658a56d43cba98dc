//! actor_bench's recovery row: 1,000 actors written through `Store`, then recovered at once
//! through their mailboxes from a fresh database handle.

use super::bank::{Account, BankEvent, Cmd, account_id, deposited};
use super::measure::percentile;
use super::{CACHE, RECOVERY_ENTITIES, RECOVERY_EVENTS, SNAPSHOT_AT, shut_down, wait_dropped};
use rush_actor::{Persistence, PersistenceConfig};
use rush_store::{Backend, Durability, EngineKind, PersistentActor, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct RecoveryRow {
    pub(crate) populate: Duration,
    pub(crate) open_db: Duration,
    pub(crate) total: Duration,
    pub(crate) caller_mean: Duration,
    pub(crate) caller_p50: Duration,
    pub(crate) caller_max: Duration,
    pub(crate) recovery_mean: Duration,
    pub(crate) recovery_max: Duration,
    pub(crate) max_concurrent: usize,
    pub(crate) size_on_disk: u64,
    pub(crate) groups: u64,
}

fn expected_balance(i: usize) -> u64 {
    (1..=RECOVERY_EVENTS)
        .map(|tag| 100 + (i as u64 + tag) % 900)
        .sum()
}

/// 1,000 entities, each 150 events with a snapshot at 100, written through `Store` with
/// periodic durability and one flush at the end.
fn populate(dir: &Path, kind: EngineKind) {
    let backend: Arc<dyn Backend> = kind.open(dir, CACHE).unwrap();
    let weak = Arc::downgrade(&backend);
    for i in 0..RECOVERY_ENTITIES {
        let id = account_id(i);
        let mut store =
            Store::<Account>::with_backend("accounts", &id, Arc::clone(&backend), None, true)
                .unwrap();
        store.set_durability(Durability::Periodic);
        let events: Vec<BankEvent> = (1..=RECOVERY_EVENTS)
            .map(|tag| deposited(&id, 100 + (i as u64 + tag) % 900, tag))
            .collect();
        let (before, after) = events.split_at(SNAPSHOT_AT as usize);
        store.persist_batch(before).unwrap();
        let mut state = Account::default();
        for e in before {
            state.apply(e);
        }
        store.snapshot(&state).unwrap();
        store.persist_batch(after).unwrap();
    }
    backend.flush().unwrap();
    drop(backend);
    wait_dropped(&weak);
}

pub(crate) async fn recovery_row(kind: EngineKind) -> RecoveryRow {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let t = Instant::now();
    tokio::task::spawn_blocking(move || populate(&path, kind))
        .await
        .unwrap();
    let populate_took = t.elapsed();

    // A fresh database handle (sled's cache is cold; the OS page cache is not).
    let t = Instant::now();
    let backend: Arc<dyn Backend> = kind.open(dir.path(), CACHE).unwrap();
    let open_db = t.elapsed();
    let size_on_disk = backend.size_on_disk().unwrap_or(0);
    let weak = Arc::downgrade(&backend);
    let persistence = Persistence::open_shared(backend, PersistenceConfig::default())
        .await
        .unwrap();
    let max_concurrent = persistence.config().max_concurrent_recoveries;

    let begin = Instant::now();
    let tasks: Vec<_> = (0..RECOVERY_ENTITIES)
        .map(|i| {
            let p = persistence.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let entity = p.get_or_spawn::<Account>(&account_id(i)).await.unwrap();
                let balance = entity.ask(Cmd::Balance).await.unwrap();
                let took = t.elapsed();
                assert_eq!(balance, expected_balance(i), "entity {i} recovered wrongly");
                took
            })
        })
        .collect();
    let mut callers = Vec::with_capacity(RECOVERY_ENTITIES);
    for t in tasks {
        callers.push(t.await.unwrap());
    }
    let total = begin.elapsed();
    callers.sort_unstable();

    let recoveries: Vec<Duration> = (0..RECOVERY_ENTITIES)
        .map(|i| {
            persistence
                .entity_metrics::<Account>(&account_id(i))
                .unwrap()
                .last_recovery_time
        })
        .collect();
    let groups = persistence.group_commit_stats().groups;
    shut_down(persistence, weak, dir).await;

    RecoveryRow {
        populate: populate_took,
        open_db,
        total,
        caller_mean: callers.iter().sum::<Duration>() / RECOVERY_ENTITIES as u32,
        caller_p50: percentile(&callers, 0.5),
        caller_max: callers.last().copied().unwrap_or_default(),
        recovery_mean: recoveries.iter().sum::<Duration>() / RECOVERY_ENTITIES as u32,
        recovery_max: recoveries.iter().max().copied().unwrap_or_default(),
        max_concurrent,
        size_on_disk,
        groups,
    }
}
