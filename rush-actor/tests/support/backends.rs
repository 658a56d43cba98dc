//! Backend wrappers for actor tests: one that fails on command, one that is slow to scan.
#![allow(dead_code)]

use rush_store::{Backend, GuardFailed, Result, WriteBatch};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Fails every commit while `broken` is set (a full disk, a dead device).
#[derive(Debug)]
pub struct Breakable {
    pub inner: Arc<dyn Backend>,
    pub broken: AtomicBool,
}

impl Breakable {
    pub fn new(inner: Arc<dyn Backend>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            broken: AtomicBool::new(false),
        })
    }
}

impl Backend for Breakable {
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
        if self.broken.load(Ordering::SeqCst) {
            return Err(rush_store::Error::Storage {
                operation: "write batch",
                message: "No space left on device (injected)".into(),
            });
        }
        self.inner.commit(batch)
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
    fn size_on_disk(&self) -> Result<u64> {
        self.inner.size_on_disk()
    }
}

/// Every forward scan of events sleeps, so recoveries take a while and overlap; counts how
/// many scans run at once.
#[derive(Debug)]
pub struct SlowScans {
    pub inner: Arc<dyn Backend>,
    pub delay: Duration,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
}

impl SlowScans {
    pub fn new(inner: Arc<dyn Backend>, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner,
            delay,
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
        })
    }
}

impl Backend for SlowScans {
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
        // Event scans (kind byte 1) of recovery are the slow ones.
        if start.first() == Some(&1) && !reverse {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(self.delay);
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
        self.inner.scan(start, end, limit, reverse)
    }
    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        self.inner.commit(batch)
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
    fn size_on_disk(&self) -> Result<u64> {
        self.inner.size_on_disk()
    }
}
