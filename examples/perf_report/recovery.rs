//! perf_report's recovery row: 1,000 actors of `RECOVERY_EVENTS` events recovered through
//! the actor runtime, against raw sled scanning and decoding the same events; each the
//! median of `RECOVERIES` recoveries from a fresh open.

use super::bank_workload::{Account, BankEvent, KEY, Raw, bincode_bytes};
use super::{ACTORS, Engine, RECOVERY_EVENTS, open_engine, open_persistence};
use rush_store::{Durability, PersistentActor, Store};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Recoveries per row: the row shows their median (one recovery took 45 to 73 ms in two
/// runs of the same build, its raw twin 35 to 37 ms).
pub const RECOVERIES: usize = 5;

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Time to recover `ACTORS` actors of `RECOVERY_EVENTS` events each, all asked at once:
/// the median of `RECOVERIES` recoveries of one database, each from a fresh open.
pub async fn recovery(kind: Engine, pool: &[BankEvent]) -> Duration {
    let dir = populate_for_recovery(kind, pool);
    let mut times = Vec::new();
    for _ in 0..RECOVERIES {
        times.push(recover_all(kind, &dir).await);
    }
    median(times)
}

/// A database of `ACTORS` actors with `RECOVERY_EVENTS` events each.
pub fn populate_for_recovery(kind: Engine, pool: &[BankEvent]) -> TempDir {
    let dir = TempDir::new().unwrap();
    {
        let engine = open_engine(kind, dir.path());
        for i in 0..ACTORS {
            let id = format!("a{i:04}");
            let mut store =
                Store::<Account>::new("actors", &id, engine.clone(), Some(&KEY[..]), true).unwrap();
            store.set_durability(Durability::Periodic);
            store
                .persist_batch(&pool[i..i + RECOVERY_EVENTS as usize])
                .unwrap();
        }
        engine.flush().unwrap();
    }
    dir
}

/// Opens `dir` and recovers every actor of it, all at once: the time from the first spawn
/// to the last actor's state. The state is read through the mailbox, so it waits for
/// recovery, and nothing is written: raw sled writes nothing either (a durable command per
/// actor added a group commit of 1,000 events, about 30 ms, to the row).
pub async fn recover_all(kind: Engine, dir: &TempDir) -> Duration {
    let persistence = open_persistence(kind, dir.path()).await;
    let t = Instant::now();
    let tasks: Vec<_> = (0..ACTORS)
        .map(|i| {
            let p = persistence.clone();
            tokio::spawn(async move {
                let entity = p
                    .get_or_spawn::<Account>(&format!("a{i:04}"))
                    .await
                    .unwrap();
                entity.state().await.unwrap().balance_cents
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let ours = t.elapsed();
    persistence.shutdown().await.unwrap();
    ours
}

/// Raw: range-scan and decode the same events per entity, on one thread, from a fresh
/// open: the median of `RECOVERIES` runs.
pub fn raw_recovery(pool: &[BankEvent]) -> Duration {
    let raw_dir = TempDir::new().unwrap();
    {
        let raw = Raw::open(raw_dir.path());
        for i in 0..ACTORS {
            let id = format!("a{i:04}");
            let mut batch = sled::Batch::default();
            for (seq, event) in (1u64..).zip(&pool[i..i + RECOVERY_EVENTS as usize]) {
                let mut key = id.as_bytes().to_vec();
                key.extend_from_slice(&seq.to_be_bytes());
                batch.insert(key, bincode_bytes(event));
            }
            raw.db.apply_batch(batch).unwrap();
        }
        raw.durable();
    }
    let times = (0..RECOVERIES)
        .map(|_| {
            let raw = Raw::open(raw_dir.path());
            let t = Instant::now();
            for i in 0..ACTORS {
                let mut state = Account::default();
                for item in raw.db.scan_prefix(format!("a{i:04}").as_bytes()) {
                    let (_, value) = item.unwrap();
                    let (event, _): (BankEvent, usize) =
                        bincode::serde::decode_from_slice(&value, bincode::config::standard())
                            .unwrap();
                    state.apply(&event);
                }
                assert!(state.deposits + state.withdrawals + state.fees == RECOVERY_EVENTS);
            }
            t.elapsed()
        })
        .collect();
    median(times)
}
