//! Live subscriptions: catch up from the journal, then follow new commits.
//!
//! The journal is the only buffer. A subscription is a cursor on its collection's log: it
//! reads a page from its next offset (on the database's threads, never on a tokio worker),
//! hands the events out, and when it is caught up it waits for the database's signal that
//! new entries became durable (a watch channel that holds only the newest value) before
//! reading again. It sees an event only after the flush that makes it durable. So the
//! switch from catching up to live cannot skip or repeat an event (there is one cursor, not two sources to splice), and a slow subscriber
//! costs the writers nothing: it is simply further behind in the journal.

mod read_ahead;

use super::shared_pages::{Member, Page};
use super::{EventFilter, EventQuery, StoredEvent};
use crate::error::Result;
use crate::persistent_actor::PersistentActor;
use futures_core::Stream;
use read_ahead::{PageRead, PageReader, ReadAhead};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;

/// Log entries read per step: a subscriber holds at most `2 + read_ahead::AHEAD` pages of
/// events in memory (the page handed out, the next one, and those read ahead while it
/// catches up). A page is read on a database thread; each read costs two thread
/// wake-ups, so smaller pages slow a catch-up (256 measured 40% slower than 1,024 on a
/// 2-core VM).
const PAGE: usize = 1024;
/// A caught-up subscriber looks again at least this often (belt and braces: the database's
/// own signal is not missed, but another process may write too, and an engine's signal
/// of other processes' appends can lose a notice).
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// A stream of [`StoredEvent`]s: first everything from the start offset, then each new
/// event once durable. It ends after yielding an error; subscribe again from the offset
/// after the last event received to go on. Needs a tokio runtime (for its timers).
///
/// ```
/// # use rush_store::{EventFilter, EventQuery, MemoryManager, PersistentActor, Store};
/// # use serde::{Deserialize, Serialize};
/// # use std::sync::Arc;
/// # #[derive(Default, Clone, Serialize, Deserialize)]
/// # struct Counter { value: u64 }
/// # impl PersistentActor for Counter {
/// #     type Event = u64;
/// #     fn apply(&mut self, n: &u64) { self.value += n; }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rush_store::Error> {
/// let backend = MemoryManager::default();
/// let mut store = Store::<Counter>::new("counters", "a", backend.clone(), None, false)?;
/// store.persist(&1)?; // before the subscription: caught up from the journal
/// let query = EventQuery::<Counter>::new(Arc::new(backend), "counters", None)?;
/// let mut live = query.subscribe(1, EventFilter::all());
/// store.persist(&2)?; // after: delivered live
/// assert_eq!(live.next().await.transpose()?.map(|e| e.event), Some(1));
/// assert_eq!(live.next().await.transpose()?.map(|e| (e.offset, e.event)), Some((2, 2)));
/// # Ok(())
/// # }
/// ```
pub struct Subscription<E> {
    /// Events read and not handed out yet (at most two pages: the one being handed out
    /// and the one read ahead).
    ready: VecDeque<StoredEvent<E>>,
    /// The next non-empty page. The page future (a read on the database's threads) is
    /// built once per page, not once per event, and the next read starts while the
    /// current page is handed out, so the reader thread and the consumer overlap.
    pages: Pages<E>,
    /// What the page stream said after the events in `ready`: its error, or its end.
    last: Option<Option<Result<StoredEvent<E>>>>,
}

/// The stream of non-empty pages behind a subscription.
type Pages<E> = Pin<Box<dyn Stream<Item = Result<Vec<StoredEvent<E>>>> + Send>>;

// Nothing in a subscription is pinned in place: the page stream is boxed, the events are
// plain values handed out by move.
impl<E> Unpin for Subscription<E> {}

impl<E> std::fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

/// Where a subscription is.
struct Cursor<A: PersistentActor> {
    reader: PageReader<A>,
    /// Pages being read ahead of `next_offset` while catching up.
    ahead: ReadAhead<A::Event>,
    next_offset: u64,
    appended: watch::Receiver<u64>,
    /// Other processes' appends, on an engine several processes share.
    elsewhere: Option<watch::Receiver<u64>>,
    failed: bool,
    /// Counted among the users of the collection's shared pages while it lives.
    _member: Option<Member>,
}

impl<E: Send + Sync + 'static> Subscription<E> {
    pub(crate) fn start<A: PersistentActor<Event = E>>(
        query: EventQuery<A>,
        from_offset: u64,
        filter: EventFilter,
    ) -> Self {
        let core = &query.database().core;
        let cursor = Cursor {
            appended: core.log_appended(),
            elsewhere: core.engine().ok().and_then(|e| e.appended_elsewhere()),
            _member: query.shared.as_ref().map(|shared| shared.join()),
            reader: PageReader { query, filter },
            ahead: ReadAhead::default(),
            next_offset: from_offset.max(1),
            failed: false,
        };
        Self {
            ready: VecDeque::new(),
            last: None,
            pages: Box::pin(futures_util::stream::unfold(cursor, Cursor::next_page)),
        }
    }

    /// The next event; `None` after an error was yielded.
    pub async fn next(&mut self) -> Option<Result<StoredEvent<E>>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<E> Stream for Subscription<E> {
    type Item = Result<StoredEvent<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(event) = this.ready.pop_front() {
            // Read ahead while this page is handed out (one page at most).
            if this.ready.len() < PAGE && this.last.is_none() {
                let _ = this.poll_page(cx);
            }
            return Poll::Ready(Some(Ok(event)));
        }
        if let Some(last) = this.last.take() {
            return Poll::Ready(last);
        }
        match this.poll_page(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => match this.ready.pop_front() {
                Some(event) => Poll::Ready(Some(Ok(event))),
                None => Poll::Ready(this.last.take().flatten()),
            },
        }
    }
}

impl<E> Subscription<E> {
    /// Polls the page stream once: a page goes to `ready`, an error or the end to `last`.
    fn poll_page(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.pages.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(page))) => self.ready.extend(page),
            Poll::Ready(Some(Err(error))) => self.last = Some(Some(Err(error))),
            Poll::Ready(None) => self.last = Some(None),
            Poll::Pending => return Poll::Pending,
        }
        Poll::Ready(())
    }
}

impl<A: PersistentActor> Cursor<A> {
    /// Reads until a page holds events (waiting for commits when caught up), or fails.
    async fn next_page(mut self) -> Option<(Result<Vec<StoredEvent<A::Event>>>, Self)> {
        loop {
            if self.failed {
                return None;
            }
            // Marked seen before reading: a commit after this point changes the value again,
            // so the wait below cannot miss it.
            self.appended.borrow_and_update();
            if let Some(elsewhere) = &mut self.elsewhere {
                elsewhere.borrow_and_update();
            }
            match self.read_page().await {
                Err(error) => {
                    self.failed = true;
                    return Some((Err(error), self));
                }
                Ok((events, next_offset, backlog)) => {
                    metrics::gauge!(
                        crate::metric_names::SUBSCRIPTION_LAG_OFFSETS,
                        "collection" => self.reader.query.collection().to_owned()
                    )
                    .set(backlog as f64);
                    let examined = next_offset > self.next_offset;
                    self.next_offset = next_offset;
                    if !events.is_empty() {
                        return Some((Ok(events), self));
                    }
                    if examined {
                        continue;
                    }
                }
            }
            self.wait_for_commit().await;
        }
    }

    /// The page from `next_offset` (read ahead, or read now), and the reads ahead of the
    /// pages after it that the log already holds.
    async fn read_page(&mut self) -> PageRead<A::Event> {
        let from = self.next_offset;
        let page = self.ahead.take(from, self.reader.read(from)).await;
        // Subscribers sharing pages already read several at once (and one racing ahead
        // would push pages out that the others still need): only one reading for itself
        // reads ahead.
        let shares_pages = self
            .reader
            .query
            .shared
            .as_ref()
            .is_some_and(|s| s.is_shared());
        if let (Ok((_, end, backlog)), false) = (&page, shares_pages) {
            self.ahead.extend(&self.reader, *end, *backlog);
        }
        page
    }

    async fn wait_for_commit(&mut self) {
        let elsewhere = async {
            let heard = match &mut self.elsewhere {
                Some(elsewhere) => elsewhere.changed().await.is_ok(),
                None => false,
            };
            if !heard {
                // No such signal, or its engine is gone: only the others wake.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            changed = self.appended.changed() => {
                if changed.is_err() {
                    // The database is gone: the next read says so.
                    tokio::time::sleep(IDLE_CHECK).await;
                }
            }
            () = elsewhere => {}
            () = tokio::time::sleep(IDLE_CHECK) => {}
        }
    }
}

impl<A: PersistentActor> PageReader<A> {
    /// The events from `from` on that the filter lets through, the offset after
    /// the entries examined, and the backlog past them. Taken from the pages shared with
    /// the collection's other subscriptions when there are any: a subscriber that takes
    /// every event reads and decodes a page for everyone at its place; one with a narrower
    /// filter, or one alone, uses pages already there and otherwise reads only what it
    /// needs, for itself (a page of its own is moved to it, not cloned).
    async fn read(&self, from: u64) -> PageRead<A::Event> {
        if let Some(shared) = &self.query.shared {
            let query = &self.query;
            let read = || async move {
                let (page, backlog) = query
                    .read_with_backlog_async(from, &EventFilter::all(), PAGE)
                    .await?;
                Ok(Page {
                    start: from,
                    end: page.next_offset,
                    backlog,
                    events: page.events,
                })
            };
            // Alone, a subscriber reads its own pages (and takes a page another one left).
            let may_read = self.filter.is_all() && shared.is_shared();
            if let Some(page) = shared.page(from, may_read, read).await {
                let page = page?;
                return Ok((page.tail(from, &self.filter), page.end, page.backlog));
            }
        }
        let (page, backlog) = self
            .query
            .read_with_backlog_async(from, &self.filter, PAGE)
            .await?;
        Ok((page.events, page.next_offset, backlog))
    }
}
