//! Both backends, so that every store test runs on each (ripgrep's SearcherTester idea),
//! and a backend that fails on command.
#![allow(dead_code)]

use rush_store::{Backend, GuardFailed, MemoryManager, Result, SledManager, WriteBatch};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// A fresh database of each kind; the folder lives as long as the value.
pub struct Fresh {
    pub name: &'static str,
    pub backend: Arc<dyn Backend>,
    pub dir: Option<tempfile::TempDir>,
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

    /// The same database again (for sled: after dropping every handle, a real reopen).
    pub fn reopen(&mut self) {
        if let Some(dir) = &self.dir {
            self.backend = Arc::new(MemoryManager::default());
            self.backend = Arc::new(SledManager::new(dir.path()).unwrap());
        }
    }
}

pub fn each_backend() -> Vec<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    let sled = SledManager::new(dir.path()).unwrap();
    vec![
        Fresh {
            name: "memory",
            backend: Arc::new(MemoryManager::default()),
            dir: None,
        },
        Fresh {
            name: "sled",
            backend: Arc::new(sled),
            dir: Some(dir),
        },
    ]
}

/// Wraps a backend; commits and flushes fail once their countdown reaches zero
/// (redb's FuzzerBackend idea). A negative countdown never fails.
#[derive(Debug)]
pub struct Faulty {
    pub inner: Arc<dyn Backend>,
    pub commits_left: AtomicI64,
    pub flushes_left: AtomicI64,
    pub disk_full: AtomicBool,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Backend>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            commits_left: AtomicI64::new(-1),
            flushes_left: AtomicI64::new(-1),
            disk_full: AtomicBool::new(false),
        })
    }

    pub fn fail_commits_after(&self, n: i64) {
        self.commits_left.store(n, Ordering::SeqCst);
    }

    pub fn fail_flushes_after(&self, n: i64) {
        self.flushes_left.store(n, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.fail_commits_after(-1);
        self.fail_flushes_after(-1);
        self.disk_full.store(false, Ordering::SeqCst);
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

fn injected(what: &'static str) -> rush_store::Error {
    // A full disk looks like this to the store: an I/O error from the engine.
    let io = std::io::Error::new(
        std::io::ErrorKind::StorageFull,
        "No space left on device (injected)",
    );
    rush_store::Error::Storage {
        operation: what,
        message: io.to_string(),
    }
}

impl Backend for Faulty {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan(start, end, limit, reverse)
    }

    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        if self.disk_full.load(Ordering::SeqCst) || Self::tick(&self.commits_left) {
            return Err(injected("write batch"));
        }
        self.inner.commit(batch)
    }

    fn flush(&self) -> Result<()> {
        if Self::tick(&self.flushes_left) {
            return Err(injected("flush"));
        }
        self.inner.flush()
    }

    fn size_on_disk(&self) -> Result<u64> {
        self.inner.size_on_disk()
    }
}
