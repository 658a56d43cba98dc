//! The test kit's journal: an in-memory engine whose next writes can be made to fail, as
//! a full disk or a dead server would make them fail.

use rush_store::{Backend, Confirmation, Durable, GuardFailed, MemoryManager, Visitor, WriteBatch};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a failed write looks like to the store.
pub(crate) const INJECTED: &str = "journal write failed (injected by the test kit)";

/// [`MemoryManager`] with a count of commits still to fail.
#[derive(Debug, Default)]
pub(crate) struct FailingJournal {
    inner: MemoryManager,
    fail_next: AtomicU64,
    failed: AtomicU64,
}

impl FailingJournal {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The next `n` commits fail.
    pub(crate) fn fail_next(&self, n: u64) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Commits failed so far.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    fn check(&self) -> rush_store::Result<()> {
        let armed = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if armed.is_ok() {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(rush_store::Error::Storage {
                operation: "write batch",
                message: INJECTED.into(),
            });
        }
        Ok(())
    }
}

impl Backend for FailingJournal {
    fn get(&self, key: &[u8]) -> rush_store::Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> rush_store::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan(start, end, limit, reverse)
    }

    fn visit_range(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut Visitor<'_>,
    ) -> rush_store::Result<()> {
        self.inner.visit_range(start, end, visit)
    }

    fn commit(&self, batch: &WriteBatch) -> rush_store::Result<Result<(), GuardFailed>> {
        self.check()?;
        self.inner.commit(batch)
    }

    fn flush(&self) -> rush_store::Result<()> {
        self.inner.flush()
    }

    fn flush_deferred(&self) -> rush_store::Result<Option<Confirmation>> {
        self.inner.flush_deferred()
    }

    fn commit_durable(&self, batch: &WriteBatch) -> rush_store::Result<Durable> {
        self.check()?;
        self.inner.commit_durable(batch)
    }

    fn size_on_disk(&self) -> rush_store::Result<u64> {
        self.inner.size_on_disk()
    }
}
