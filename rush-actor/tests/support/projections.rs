//! Projections for the projection tests: a ledger kept in tables of the same database
//! (exactly-once), one kept in memory (at-least-once), faults injected on cue, and a backend
//! that fails the Nth projection commit.
#![allow(dead_code)]

use super::account::{Account, AccountEvent};
use rush_actor::{Delivery, Projection, ProjectionError, ProjectionTx};
use rush_store::{Backend, GuardFailed, Result, StoredEvent, Table, WriteBatch};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Faults a test arms: each fires once, at the given offset (0: disarmed).
#[derive(Debug, Default)]
pub struct Faults {
    /// Panic in the handler, after the event's writes went into the transaction.
    pub panic_at: AtomicU64,
    /// Return an error from the handler, after the event's writes.
    pub error_at: AtomicU64,
    /// Return an error from the handler every time (a poison event).
    pub always_error_at: AtomicU64,
}

impl Faults {
    fn fire(&self, offset: u64) -> std::result::Result<(), ProjectionError> {
        if self
            .panic_at
            .compare_exchange(offset, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            panic!("injected panic in the projection handler at offset {offset}");
        }
        if self
            .error_at
            .compare_exchange(offset, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return Err(format!("injected handler error at offset {offset}").into());
        }
        if self.always_error_at.load(Ordering::SeqCst) == offset {
            return Err(format!("poison event at offset {offset}").into());
        }
        Ok(())
    }
}

/// Every offset handed to a handler, in order, across runner restarts and re-spawns.
pub type Handled = Arc<Mutex<Vec<u64>>>;

pub fn signed(event: &AccountEvent) -> i64 {
    match event {
        AccountEvent::Deposited { amount, .. } => *amount as i64,
        AccountEvent::Withdrawn { amount, .. } => -(*amount as i64),
        AccountEvent::Note(_) => 0,
    }
}

/// Balances and event counts per account, in tables of the database (exactly-once).
pub struct TableLedger {
    pub name: String,
    pub balances: Table<i64>,
    pub counts: Table<u64>,
    pub handled: Handled,
    pub faults: Arc<Faults>,
}

impl Projection for TableLedger {
    type Actor = Account;

    fn name(&self) -> &str {
        &self.name
    }

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }

    fn read_model_tables(&self) -> Vec<String> {
        vec![
            self.balances.name().to_owned(),
            self.counts.name().to_owned(),
        ]
    }

    async fn handle(
        &mut self,
        event: &StoredEvent<AccountEvent>,
        tx: &mut ProjectionTx,
    ) -> std::result::Result<(), ProjectionError> {
        self.handled.lock().unwrap().push(event.offset);
        let id = &event.entity_id;
        let balance = tx.get(&self.balances, id).await?.unwrap_or(0);
        tx.put(&self.balances, id, balance + signed(&event.event))?;
        let count = tx.get(&self.counts, id).await?.unwrap_or(0);
        tx.put(&self.counts, id, count + 1)?;
        self.faults.fire(event.offset)
    }
}

/// Event counts and balances per account in memory (at-least-once).
pub struct MemoryLedger {
    pub name: String,
    pub checkpoint_every: u64,
    pub counts: Arc<Mutex<HashMap<String, u64>>>,
    pub balances: Arc<Mutex<HashMap<String, i64>>>,
    pub handled: Handled,
    pub faults: Arc<Faults>,
}

impl Projection for MemoryLedger {
    type Actor = Account;

    fn name(&self) -> &str {
        &self.name
    }

    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce {
            checkpoint_every: self.checkpoint_every,
        }
    }

    async fn handle(
        &mut self,
        event: &StoredEvent<AccountEvent>,
        _tx: &mut ProjectionTx,
    ) -> std::result::Result<(), ProjectionError> {
        self.handled.lock().unwrap().push(event.offset);
        *self
            .counts
            .lock()
            .unwrap()
            .entry(event.entity_id.clone())
            .or_default() += 1;
        *self
            .balances
            .lock()
            .unwrap()
            .entry(event.entity_id.clone())
            .or_default() += signed(&event.event);
        self.faults.fire(event.offset)
    }

    async fn reset(&mut self) -> std::result::Result<(), ProjectionError> {
        self.counts.lock().unwrap().clear();
        self.balances.lock().unwrap().clear();
        Ok(())
    }
}

/// Fails the `fail_on`-th projection commit (a batch without log appends: the actors'
/// journal batches always append), as a full disk would; everything else passes through.
#[derive(Debug)]
pub struct FailingProjectionCommit {
    pub inner: Arc<dyn Backend>,
    pub fail_on: usize,
    pub projection_commits: AtomicUsize,
}

impl FailingProjectionCommit {
    pub fn new(inner: Arc<dyn Backend>, fail_on: usize) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fail_on,
            projection_commits: AtomicUsize::new(0),
        })
    }
}

impl Backend for FailingProjectionCommit {
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
    fn commit(&self, batch: &WriteBatch) -> Result<std::result::Result<(), GuardFailed>> {
        if batch.appends.is_empty() {
            let n = self.projection_commits.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.fail_on {
                return Err(rush_store::Error::Storage {
                    operation: "write batch",
                    message: "No space left on device (injected)".into(),
                });
            }
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

/// Offsets handled more than once, in order of first repeat.
pub fn repeated(handled: &Handled) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut again = Vec::new();
    for offset in handled.lock().unwrap().iter() {
        if !seen.insert(*offset) {
            again.push(*offset);
        }
    }
    again
}
