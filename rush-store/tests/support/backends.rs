//! Both backends, so that every store test runs on each (ripgrep's SearcherTester idea),
//! and a backend that fails on command. The actor tests include this file too
//! (`#[path = "../../rush-store/tests/support/backends.rs"]`), so it depends only on
//! `rush_store` and `tempfile`. On `RUSH_TEST_ENGINE=postgres`, a fresh schema of the
//! server under test joins them.
#![allow(dead_code)]

#[path = "engine_under_test.rs"]
pub mod engine_under_test;

use rush_store::{
    Backend, GuardFailed, MemoryManager, RedbManager, Result, SledManager, WriteBatch,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// A fresh database of each kind; the folder lives as long as the value.
pub struct Fresh {
    pub name: &'static str,
    pub backend: Arc<dyn Backend>,
    pub dir: Option<tempfile::TempDir>,
    /// The PostgreSQL schema, for the `postgres` one.
    pub schema: Option<String>,
}

impl Fresh {
    /// A store of entity `entity` in collection "accounts" on this database.
    pub fn open<A: rush_store::PersistentActor>(
        &self,
        entity: &str,
        key: Option<&[u8]>,
        compressed: bool,
    ) -> rush_store::Store<A> {
        rush_store::Store::with_backend("accounts", entity, self.backend.clone(), key, compressed)
            .unwrap()
    }

    /// The same database again (for the file engines: after dropping every handle, a
    /// real reopen).
    pub fn reopen(&mut self) {
        if let Some(schema) = &self.schema {
            self.backend = Arc::new(MemoryManager::default());
            self.backend = engine_under_test::postgres_at(schema);
        }
        if let Some(dir) = &self.dir {
            self.backend = Arc::new(MemoryManager::default());
            self.backend = match self.name {
                "redb" => Arc::new(RedbManager::new(dir.path()).unwrap()),
                _ => Arc::new(SledManager::new(dir.path()).unwrap()),
            };
        }
    }
}

pub fn each_backend() -> Vec<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    let sled = SledManager::new(dir.path()).unwrap();
    let redb_dir = tempfile::tempdir().unwrap();
    let mut each = vec![
        Fresh {
            name: "memory",
            backend: Arc::new(MemoryManager::default()),
            dir: None,
            schema: None,
        },
        Fresh {
            name: "sled",
            backend: Arc::new(sled),
            dir: Some(dir),
            schema: None,
        },
        Fresh {
            name: "redb",
            backend: Arc::new(RedbManager::new(redb_dir.path()).unwrap()),
            dir: Some(redb_dir),
            schema: None,
        },
    ];
    if engine_under_test::chosen() == Some("postgres") {
        let (backend, schema) = engine_under_test::postgres_fresh();
        each.push(Fresh {
            name: "postgres",
            backend,
            dir: None,
            schema: Some(schema),
        });
    }
    each
}

/// Wraps a backend and fails at chosen points (redb's FuzzerBackend idea):
/// - `fail_commits_after(n)` / `fail_flushes_after(n)`: the commit or flush after `n`
///   more successful ones fails, and every one after it, until `heal` (negative: never);
/// - `disk_full`: every commit fails with an ENOSPC-like engine error;
/// - `tear_next_commit(keep)`: the next commit writes only the first `keep` of its ops
///   (its guards still checked, its log appends dropped: they come after the ops) to the
///   inner backend and then fails, as an engine without atomic batches would on a crash
///   or a full disk in the middle of a batch. One-shot.
#[derive(Debug)]
pub struct Faulty {
    pub inner: Arc<dyn Backend>,
    pub commits_left: AtomicI64,
    pub flushes_left: AtomicI64,
    pub disk_full: AtomicBool,
    /// Ops the next commit keeps before it fails; negative: no tear pending.
    pub tear_keep: AtomicI64,
    /// Faults injected so far (so that a test can tell the fault really fired).
    pub injected: AtomicU64,
    /// Reads (`get` and `scan` calls) so far.
    pub reads: AtomicU64,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Backend>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            commits_left: AtomicI64::new(-1),
            flushes_left: AtomicI64::new(-1),
            disk_full: AtomicBool::new(false),
            tear_keep: AtomicI64::new(-1),
            injected: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        })
    }

    pub fn fail_commits_after(&self, n: i64) {
        self.commits_left.store(n, Ordering::SeqCst);
    }

    pub fn fail_flushes_after(&self, n: i64) {
        self.flushes_left.store(n, Ordering::SeqCst);
    }

    pub fn set_disk_full(&self, full: bool) {
        self.disk_full.store(full, Ordering::SeqCst);
    }

    pub fn tear_next_commit(&self, keep: usize) {
        self.tear_keep
            .store(i64::try_from(keep).unwrap(), Ordering::SeqCst);
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Engine reads (`get`, `scan`) so far.
    #[allow(dead_code)]
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    pub fn heal(&self) {
        self.fail_commits_after(-1);
        self.fail_flushes_after(-1);
        self.disk_full.store(false, Ordering::SeqCst);
        self.tear_keep.store(-1, Ordering::SeqCst);
    }

    fn tick(counter: &AtomicI64) -> bool {
        let left = counter.load(Ordering::SeqCst);
        if left < 0 {
            return false;
        }
        if left == 0 {
            return true;
        }
        counter.fetch_sub(1, Ordering::SeqCst);
        false
    }
}

/// The message of every injected engine error: what a full disk looks like to the store.
pub const ENOSPC: &str = "No space left on device (injected)";

fn injected(what: &'static str) -> rush_store::Error {
    // What an engine returns for ENOSPC.
    let io = std::io::Error::new(std::io::ErrorKind::StorageFull, ENOSPC);
    rush_store::Error::from_io(what, &io)
}

fn torn(kept: usize, of: usize) -> rush_store::Error {
    rush_store::Error::Storage {
        operation: "write batch",
        message: format!("torn write (injected): {kept} of {of} writes applied; {ENOSPC}"),
    }
}

impl Backend for Faulty {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.scan(start, end, limit, reverse)
    }

    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        if self.disk_full.load(Ordering::SeqCst) || Self::tick(&self.commits_left) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(injected("write batch"));
        }
        let keep = self.tear_keep.swap(-1, Ordering::SeqCst);
        if let Ok(keep) = usize::try_from(keep) {
            let keep = keep.min(batch.ops.len());
            let prefix = WriteBatch {
                guards: batch.guards.clone(),
                ops: batch.ops[..keep].to_vec(),
                appends: Vec::new(),
            };
            // A failed guard writes nothing, torn engine or not.
            if let Err(failed) = self.inner.commit(&prefix)? {
                return Ok(Err(failed));
            }
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(torn(keep, batch.ops.len()));
        }
        self.inner.commit(batch)
    }

    fn flush(&self) -> Result<()> {
        if Self::tick(&self.flushes_left) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(injected("flush"));
        }
        self.inner.flush()
    }

    fn size_on_disk(&self) -> Result<u64> {
        self.inner.size_on_disk()
    }
}
