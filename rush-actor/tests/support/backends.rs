//! A backend wrapper for actor tests that is slow to scan. The one that fails on command
//! is the store's `Faulty` (`rush-store/tests/support/backends.rs`, included by path).
#![allow(dead_code)]

use rush_store::{Backend, GuardFailed, Result, WriteBatch};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
