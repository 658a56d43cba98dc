//! `Database::backup` under load: the copy is one consistent image (every journal
//! contiguous, every record verified), holds at least every event acknowledged before the
//! call and nothing that was not committed, on each engine with files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rush_store::{
    Backend, Database, DatabaseConfig, Error, EventMetadata, MemoryManager, PersistentActor,
    RedbManager, SledManager, Store,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Counter {
    total: u64,
}

impl PersistentActor for Counter {
    type Event = u64;
    fn apply(&mut self, n: &u64) {
        self.total += n;
    }
}

const WRITERS: usize = 8;
const KEY: [u8; 32] = [4; 32];

fn config() -> DatabaseConfig {
    DatabaseConfig {
        encryption_key: Some(KEY.into()),
        ..DatabaseConfig::default()
    }
}

async fn backup_under_load(
    engine: Arc<dyn Backend>,
    reopen: fn(&std::path::Path) -> Arc<dyn Backend>,
) {
    let db = Database::open_shared(engine, config()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, stop, acked) = (db.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let mut store = db.store::<Counter>("c", &format!("w{w}")).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let seq = store
                        .persist_async(&[1], &EventMetadata::default())
                        .await
                        .unwrap();
                    acked[w].store(seq, Ordering::SeqCst);
                }
            })
        })
        .collect();
    while acked.iter().any(|a| a.load(Ordering::SeqCst) < 50) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    let dest = tempfile::tempdir().unwrap();
    let copy = dest.path().join("backup");
    let report = db.backup(&copy).await.unwrap();
    let after: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    db.shutdown().await.unwrap();

    // A write that was committed but not yet answered when `after` was read may be in the
    // copy: at most one per writer.
    let (low, high): (u64, u64) = (
        before.iter().sum(),
        after.iter().sum::<u64>() + WRITERS as u64,
    );
    assert!(
        (low..=high).contains(&report.events),
        "{low} <= {} <= {high}",
        report.events
    );
    let engine = reopen(&copy);
    let mut total = 0;
    for (w, acked_before) in before.iter().enumerate() {
        let store =
            Store::<Counter>::with_backend("c", &format!("w{w}"), engine.clone(), Some(&KEY), true)
                .unwrap();
        // Recovery reads the whole journal and fails on a gap.
        let state = store.recover().unwrap().unwrap_or_default();
        assert!(
            state.total >= *acked_before,
            "writer {w}: {} < {acked_before}",
            state.total
        );
        total += state.total;
    }
    assert_eq!(total, report.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_is_one_consistent_image_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    backup_under_load(Arc::new(SledManager::new(dir.path()).unwrap()), |path| {
        Arc::new(SledManager::new(path).unwrap())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_is_one_consistent_image_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    backup_under_load(Arc::new(RedbManager::new(dir.path()).unwrap()), |path| {
        Arc::new(RedbManager::new(path).unwrap())
    })
    .await;
}

#[tokio::test]
async fn a_memory_database_or_an_occupied_folder_is_refused() {
    let db = Database::open(MemoryManager::default(), config()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let refused = db.backup(dest.path().join("b")).await;
    assert!(
        matches!(refused, Err(Error::InvalidArgument(_))),
        "{refused:?}"
    );
    std::fs::write(dest.path().join("note"), "x").unwrap();
    let occupied = db.backup(dest.path()).await;
    assert!(
        matches!(occupied, Err(Error::InvalidArgument(_))),
        "{occupied:?}"
    );
}
