//! Pages of decoded events shared by the subscriptions of one collection, so that ten
//! subscribers reading the same range open, decompress and decode each event once, not ten
//! times.
//!
//! A page is the events of offsets `start .. end` that were durable when it was read,
//! decoded with no filter. Subscribers ask for the page starting where they are: the first
//! one to ask reads it on the database's threads, the others asking for the same start
//! wait for that read and get the same page; a subscriber inside a page already read takes
//! its tail. Each subscriber then filters and clones the events it hands out. So
//! subscribers at the same position (the usual case: catching up together, or all live at
//! the end of the log) share every read, and one that falls behind finds the pages it
//! needs still there for a while, then reads its own.
//!
//! Bounded: at most `capacity` pages (each at most one read page of events) are kept per
//! collection and actor type; the page read longest ago goes first. A page that
//! ended at the durable end of the log is never extended: the next read starts at its end,
//! so live subscribers read only what is new. A failed read is handed to everyone who
//! waited for it and forgotten, so the next ask reads again.

use super::{EventFilter, StoredEvent};
use crate::error::Result;
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use tokio::sync::OnceCell;

/// Decoded events of offsets `start .. end`, and how far the log went beyond `end` when
/// they were read.
#[derive(Debug)]
pub(crate) struct Page<E> {
    pub(crate) start: u64,
    /// The offset after the last entry examined (`start` when there was none).
    pub(crate) end: u64,
    /// Entries past `end` in the log when the page was read (0 unless the page was full).
    pub(crate) backlog: u64,
    pub(crate) events: Vec<StoredEvent<E>>,
}

impl<E: Clone> Page<E> {
    /// Whether the page holds offset `offset`.
    fn covers(&self, offset: u64) -> bool {
        self.start <= offset && offset < self.end
    }

    /// Clones of the events from `from` on that `filter` lets through.
    pub(crate) fn tail(&self, from: u64, filter: &EventFilter) -> Vec<StoredEvent<E>> {
        let first = self.events.partition_point(|e| e.offset < from);
        let tail = self.events.get(first..).unwrap_or_default();
        if filter.is_all() {
            return tail.to_vec();
        }
        tail.iter()
            .filter(|e| filter.matches_event(e))
            .cloned()
            .collect()
    }
}

/// A page being read, or read.
type Slot<E> = Arc<OnceCell<Result<Arc<Page<E>>>>>;

/// The shared pages of one collection and actor type.
pub(crate) struct SharedPages<E> {
    /// By start offset: when the page's read began (a count), and the page.
    slots: Mutex<BTreeMap<u64, (u64, Slot<E>)>>,
    /// Reads begun so far: the oldest page kept is the first to go.
    reads_begun: AtomicU64,
    capacity: usize,
    /// Live subscriptions using this set: one alone reads its own pages (its events are
    /// then moved to it, not cloned out of a shared page).
    subscribers: Arc<AtomicUsize>,
}

/// A subscription's place among the users of a set: counted while it lives.
#[derive(Debug)]
pub(crate) struct Member {
    subscribers: Arc<AtomicUsize>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<E> std::fmt::Debug for SharedPages<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPages")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<E> SharedPages<E> {
    /// Counts a subscription among this set's users while the returned value lives.
    pub(crate) fn join(&self) -> Member {
        self.subscribers.fetch_add(1, Ordering::SeqCst);
        Member {
            subscribers: Arc::clone(&self.subscribers),
        }
    }

    /// Whether more than one subscription uses this set now.
    pub(crate) fn is_shared(&self) -> bool {
        self.subscribers.load(Ordering::SeqCst) > 1
    }

    /// How many pages are kept now.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl<E: Clone + Send + Sync + 'static> SharedPages<E> {
    /// An empty set of at most `capacity` pages.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(BTreeMap::new()),
            reads_begun: AtomicU64::new(0),
            capacity,
            subscribers: Arc::default(),
        }
    }

    /// The page holding offset `from`: one already read, the read of one starting at
    /// `from` that someone else started, or (when `may_read`) a read of our own that others
    /// may join. `None`: no such page and `may_read` is false (a subscriber with a narrow
    /// filter reads only what it needs instead of decoding a whole page for others).
    pub(crate) async fn page<F, Fut>(
        &self,
        from: u64,
        may_read: bool,
        read: F,
    ) -> Option<Result<Arc<Page<E>>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Page<E>>>,
    {
        let slot = self.slot(from, may_read)?;
        let outcome = slot
            .get_or_init(|| async { read().await.map(Arc::new) })
            .await
            .clone();
        if outcome.is_err() {
            self.forget(from, &slot);
        }
        Some(outcome)
    }

    /// The slot to wait on for `from` (a new one when `create` and none fits).
    fn slot(&self, from: u64, create: bool) -> Option<Slot<E>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((&start, (_, slot))) = slots.range(..=from).next_back() {
            match slot.get() {
                // Read, and holds `from`.
                Some(Ok(page)) if page.covers(from) => return Some(Arc::clone(slot)),
                // Being read from exactly here: join it.
                None if start == from => return Some(Arc::clone(slot)),
                // Read before more was durable, or failed: it is replaced below.
                _ => {}
            }
        }
        if !create {
            return None;
        }
        let slot: Slot<E> = Arc::default();
        let begun = self.reads_begun.fetch_add(1, Ordering::Relaxed);
        slots.insert(from, (begun, Arc::clone(&slot)));
        // The page read longest ago goes first: in a catch-up that is the one furthest
        // behind, and pages left from an earlier catch-up (say, near the log's end) go
        // before the pages of one that starts again from the beginning.
        while slots.len() > self.capacity.max(1) {
            let Some(oldest) = slots
                .iter()
                .filter(|(start, _)| **start != from)
                .min_by_key(|(_, (begun, _))| *begun)
                .map(|(start, _)| *start)
            else {
                break;
            };
            slots.remove(&oldest);
        }
        Some(slot)
    }

    /// Drops `slot` (a failed read) if it is still the one at `from`.
    fn forget(&self, from: u64, slot: &Slot<E>) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots
            .get(&from)
            .is_some_and(|(_, held)| Arc::ptr_eq(held, slot))
        {
            slots.remove(&from);
        }
    }
}

/// The shared pages of a database handle (one keyring), one set per collection and actor
/// type, alive while a query uses them.
#[derive(Debug)]
pub(crate) struct Registry {
    sets: Mutex<HashMap<(String, TypeId), Weak<dyn Any + Send + Sync>>>,
    /// Pages per set (0: subscriptions read alone).
    capacity: usize,
}

impl Registry {
    /// Sets of at most `capacity` pages each (0: no sharing).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            sets: Mutex::default(),
            capacity,
        }
    }

    /// The set of `collection` for actor type `actor` (a new one when no query holds
    /// one); `None` when sharing is off.
    pub(crate) fn pages<E: Clone + Send + Sync + 'static>(
        &self,
        collection: &str,
        actor: TypeId,
    ) -> Option<Arc<SharedPages<E>>> {
        if self.capacity == 0 {
            return None;
        }
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (collection.to_owned(), actor);
        if let Some(Ok(set)) = sets
            .get(&key)
            .and_then(Weak::upgrade)
            .map(Arc::downcast::<SharedPages<E>>)
        {
            return Some(set);
        }
        sets.retain(|_, set| set.strong_count() > 0);
        let set = Arc::new(SharedPages::new(self.capacity));
        let erased: Arc<dyn Any + Send + Sync> = set.clone();
        sets.insert(key, Arc::downgrade(&erased));
        Some(set)
    }

    /// A set of its own for a query whose keys differ from the handle's.
    pub(crate) fn private<E: Clone + Send + Sync + 'static>(&self) -> Option<Arc<SharedPages<E>>> {
        (self.capacity > 0).then(|| Arc::new(SharedPages::new(self.capacity)))
    }
}

#[cfg(test)]
mod tests;
