//! Engine wrappers for tests of the database core: one that only keeps what was flushed
//! (a crash is "take the flushed copy"), one whose flush waits at a gate, one that panics
//! on command, and one that records which threads call it.
#![allow(dead_code)]

use rush_store::{Backend, GuardFailed, MemoryManager, Result, WriteBatch};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// The reads of a wrapper that only changes writes: straight to `self.$inner`.
macro_rules! reads_from {
    ($inner:ident) => {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.$inner.get(key)
        }
        fn scan(
            &self,
            start: &[u8],
            end: &[u8],
            limit: usize,
            reverse: bool,
        ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
            self.$inner.scan(start, end, limit, reverse)
        }
        fn size_on_disk(&self) -> Result<u64> {
            Ok(0)
        }
    };
}

/// Reads and commits go to `live`; a flush replays the commits since the last flush onto
/// `flushed`, which is what a crash would leave.
#[derive(Debug, Default)]
pub struct Volatile {
    pub live: MemoryManager,
    pub flushed: MemoryManager,
    pending: Mutex<Vec<WriteBatch>>,
}

impl Volatile {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

impl Backend for Volatile {
    reads_from!(live);
    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        let outcome = self.live.commit(batch)?;
        if outcome.is_ok() {
            self.pending.lock().unwrap().push(batch.clone());
        }
        Ok(outcome)
    }
    fn flush(&self) -> Result<()> {
        for batch in self.pending.lock().unwrap().drain(..) {
            self.flushed
                .commit(&batch)?
                .expect("replaying a committed batch");
        }
        Ok(())
    }
}

/// A flush waits until the gate opens; `flushing` tells that one is waiting.
#[derive(Debug, Default)]
pub struct Gated {
    pub inner: MemoryManager,
    open: Mutex<bool>,
    changed: Condvar,
    pub flushing: AtomicBool,
}

impl Gated {
    pub fn closed() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

impl Backend for Gated {
    reads_from!(inner);
    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        self.inner.commit(batch)
    }
    fn flush(&self) -> Result<()> {
        self.flushing.store(true, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
        self.flushing.store(false, Ordering::SeqCst);
        Ok(())
    }
}

/// Commits panic while `panic_on_commit` is set (an engine bug, a poisoned lock inside it).
#[derive(Debug, Default)]
pub struct Panicky {
    pub inner: MemoryManager,
    pub panic_on_commit: AtomicBool,
}

impl Backend for Panicky {
    reads_from!(inner);
    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        if self.panic_on_commit.load(Ordering::SeqCst) {
            panic!("engine bug (injected)");
        }
        self.inner.commit(batch)
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

/// Records the name of every thread that calls the engine and is not one of the
/// database's own (`rush-*`): an engine call on a tokio worker shows up here.
#[derive(Debug, Default)]
pub struct ThreadCheck {
    pub inner: MemoryManager,
    pub offenders: Mutex<Vec<String>>,
}

impl ThreadCheck {
    fn check(&self, call: &str) {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        if !name.starts_with("rush-") {
            self.offenders
                .lock()
                .unwrap()
                .push(format!("{call} on {name}"));
        }
    }

    pub fn offenders(&self) -> Vec<String> {
        self.offenders.lock().unwrap().clone()
    }
}

impl Backend for ThreadCheck {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check("get");
        self.inner.get(key)
    }
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.check("scan");
        self.inner.scan(start, end, limit, reverse)
    }
    fn visit_range(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut rush_store::Visitor<'_>,
    ) -> Result<()> {
        self.check("visit_range");
        self.inner.visit_range(start, end, visit)
    }
    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        self.check("commit");
        self.inner.commit(batch)
    }
    fn flush(&self) -> Result<()> {
        self.check("flush");
        self.inner.flush()
    }
    fn size_on_disk(&self) -> Result<u64> {
        Ok(0)
    }
}

/// A flush whose last step (as the commit mark's) waits at a gate and then succeeds, or
/// fails with `fail_steps_with`; counts commits and steps, so a test can tell that the
/// writer went on committing while a step waited.
#[derive(Debug, Default)]
pub struct Confirming {
    pub inner: MemoryManager,
    pub state: Arc<StepState>,
    pub commits: std::sync::atomic::AtomicUsize,
}

/// What the steps of a [`Confirming`] engine share.
#[derive(Debug, Default)]
pub struct StepState {
    open: Mutex<bool>,
    changed: Condvar,
    pub started: std::sync::atomic::AtomicUsize,
    pub fail_with: Mutex<Option<rush_store::Error>>,
}

impl StepState {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

impl Backend for Confirming {
    reads_from!(inner);
    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(batch)
    }
    fn flush(&self) -> Result<()> {
        rush_store::engine_kit::confirm_now(self.flush_deferred()?)
    }
    fn flush_deferred(&self) -> Result<Option<rush_store::Confirmation>> {
        let state = Arc::clone(&self.state);
        Ok(Some(Box::new(move || {
            state.started.fetch_add(1, Ordering::SeqCst);
            let mut open = state.open.lock().unwrap();
            while !*open {
                open = state.changed.wait(open).unwrap();
            }
            drop(open);
            state
                .fail_with
                .lock()
                .unwrap()
                .clone()
                .map_or(Ok(None), Err)
        })))
    }
}
