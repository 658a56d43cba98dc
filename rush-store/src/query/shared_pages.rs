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
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::metadata::EventMetadata;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    fn event(offset: u64, entity: &str) -> StoredEvent<u64> {
        StoredEvent {
            offset,
            entity_id: entity.into(),
            sequence_number: offset,
            timestamp: SystemTime::UNIX_EPOCH,
            event_type: "n".into(),
            tags: Vec::new(),
            metadata: EventMetadata::default(),
            event: offset,
        }
    }

    fn page(start: u64, end: u64) -> Page<u64> {
        Page {
            start,
            end,
            backlog: 0,
            events: (start..end).map(|o| event(o, "a")).collect(),
        }
    }

    #[tokio::test]
    async fn readers_at_the_same_start_share_one_read() {
        let pages = Arc::new(SharedPages::<u64>::new(4));
        let reads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let pages = Arc::clone(&pages);
                let reads = Arc::clone(&reads);
                tokio::spawn(async move {
                    pages
                        .page(1, true, || async move {
                            reads.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok(page(1, 11))
                        })
                        .await
                        .unwrap()
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().events.len(), 10);
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_reader_inside_a_page_takes_its_tail_and_a_reader_past_it_reads_anew() {
        let pages = SharedPages::<u64>::new(4);
        pages
            .page(1, true, || async { Ok(page(1, 11)) })
            .await
            .unwrap()
            .unwrap();
        let inside = pages
            .page(5, false, || async {
                panic!("no read for a covered offset")
            })
            .await
            .unwrap()
            .unwrap();
        let tail = inside.tail(5, &EventFilter::all());
        assert_eq!(tail.first().map(|e| e.offset), Some(5));
        assert_eq!(tail.len(), 6);
        // Past the end: nothing to join without reading.
        assert!(
            pages
                .page(11, false, || async { Ok(page(11, 12)) })
                .await
                .is_none()
        );
        let next = pages
            .page(11, true, || async { Ok(page(11, 13)) })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.events.len(), 2);
    }

    #[tokio::test]
    async fn a_page_read_at_the_end_of_the_log_is_read_again_once_more_is_there() {
        let pages = SharedPages::<u64>::new(4);
        // Caught up: nothing was durable past offset 7.
        let empty = pages
            .page(7, true, || async { Ok(page(7, 7)) })
            .await
            .unwrap()
            .unwrap();
        assert!(empty.events.is_empty());
        let later = pages
            .page(7, true, || async { Ok(page(7, 9)) })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(later.events.len(), 2);
    }

    #[tokio::test]
    async fn a_failed_read_reaches_every_waiter_and_is_read_again_next_time() {
        let pages = SharedPages::<u64>::new(4);
        let failed = pages
            .page(1, true, || async {
                Err(crate::Error::storage("read", "the disk said no"))
            })
            .await
            .unwrap();
        assert!(failed.is_err());
        let again = pages
            .page(1, true, || async { Ok(page(1, 3)) })
            .await
            .unwrap();
        assert_eq!(again.unwrap().events.len(), 2);
    }

    #[tokio::test]
    async fn at_most_capacity_pages_are_kept_the_oldest_read_first_out() {
        let pages = SharedPages::<u64>::new(2);
        for start in [1, 11, 21] {
            pages
                .page(start, true, || async move { Ok(page(start, start + 10)) })
                .await
                .unwrap()
                .unwrap();
        }
        assert!(
            pages
                .page(5, false, || async { Ok(page(5, 6)) })
                .await
                .is_none()
        );
        assert!(
            pages
                .page(15, false, || async { Ok(page(15, 16)) })
                .await
                .is_some()
        );
    }

    /// Pages left over from an earlier catch-up near the log's end go before the pages of
    /// a new catch-up from the start. With the lowest start evicted first they stayed, the
    /// new catch-up kept one page, and ten subscribers that drifted apart by more than
    /// that read every page each (read_side_bench: 10M decodes for 10 x 1M events).
    #[tokio::test]
    async fn pages_of_an_earlier_catch_up_go_before_the_pages_of_a_new_one() {
        let pages = SharedPages::<u64>::new(3);
        for start in [1001, 1011, 1021] {
            pages
                .page(start, true, || async move { Ok(page(start, start + 10)) })
                .await
                .unwrap()
                .unwrap();
        }
        for start in [1, 11] {
            pages
                .page(start, true, || async move { Ok(page(start, start + 10)) })
                .await
                .unwrap()
                .unwrap();
        }
        assert!(
            pages
                .page(5, false, || async { Ok(page(5, 6)) })
                .await
                .is_some(),
            "the new catch-up's first page is still there for those behind"
        );
        assert!(
            pages
                .page(1005, false, || async { Ok(page(1005, 1006)) })
                .await
                .is_none(),
            "the earlier catch-up's oldest page went first"
        );
    }

    #[test]
    fn a_tail_keeps_only_what_the_filter_lets_through() {
        let mut read = page(1, 5);
        read.events[1].entity_id = "b".into();
        let only_b = read.tail(1, &EventFilter::all().entity("b"));
        assert_eq!(only_b.len(), 1);
        assert_eq!(only_b[0].offset, 2);
    }

    #[test]
    fn the_registry_hands_out_one_set_per_collection_and_actor_while_it_is_held() {
        let registry = Registry::new(4);
        let a = registry.pages::<u64>("c", TypeId::of::<u8>()).unwrap();
        let again = registry.pages::<u64>("c", TypeId::of::<u8>()).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let other = registry.pages::<u64>("d", TypeId::of::<u8>()).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        drop((a, again));
        let fresh = registry.pages::<u64>("c", TypeId::of::<u8>()).unwrap();
        assert_eq!(Arc::strong_count(&fresh), 1);
        assert!(
            Registry::new(0)
                .pages::<u64>("c", TypeId::of::<u8>())
                .is_none()
        );
    }
}
