//! A query read as an iterator: one page of the collection's log at a time, so memory is
//! bounded by a page whatever the size of the collection.

use super::{EventFilter, EventPage, EventQuery, PAGE, StoredEvent};
use crate::error::Result;
use crate::persistent_actor::PersistentActor;

/// Reads a page of a collection's log (an [`EventQuery`] without its actor type).
trait ReadPage<E>: Send + Sync {
    fn read_page(&self, from: u64, filter: &EventFilter, limit: usize) -> Result<EventPage<E>>;
}

impl<A: PersistentActor> ReadPage<A::Event> for EventQuery<A> {
    fn read_page(
        &self,
        from: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<EventPage<A::Event>> {
        self.read(from, filter, limit)
    }
}

/// The matching events of a collection from an offset, in offset order, read a page of
/// the collection's log at a time: from [`EventQuery::iter`]. It ends at the end of the
/// log as it finds it (a subscription, [`EventQuery::subscribe`], goes on with new
/// commits), and after yielding an error.
pub struct QueryIter<E> {
    query: Box<dyn ReadPage<E>>,
    filter: EventFilter,
    next_offset: u64,
    /// The matching events of the last page read, not yet yielded.
    ready: std::vec::IntoIter<StoredEvent<E>>,
    /// Set once the end of the log was read, or an error yielded.
    finished: bool,
}

impl<E> std::fmt::Debug for QueryIter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryIter")
            .field("filter", &self.filter)
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

impl<E: 'static> QueryIter<E> {
    pub(super) fn start<A: PersistentActor<Event = E>>(
        query: EventQuery<A>,
        from_offset: u64,
        filter: EventFilter,
    ) -> Self {
        Self {
            query: Box::new(query),
            filter,
            next_offset: from_offset.max(1),
            ready: Vec::new().into_iter(),
            finished: false,
        }
    }

    /// The offset after the last log entry read (matching or not): a later query (or a
    /// subscription) from it continues where this iterator stopped reading.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }
}

impl<E> Iterator for QueryIter<E> {
    type Item = Result<StoredEvent<E>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.ready.next() {
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            let from = self.next_offset;
            match self.query.read_page(from, &self.filter, PAGE) {
                Err(error) => {
                    self.finished = true;
                    return Some(Err(error));
                }
                Ok(page) => {
                    // A short page reached the end of the log.
                    self.finished = page.next_offset.saturating_sub(from) < PAGE as u64;
                    self.next_offset = page.next_offset;
                    self.ready = page.events.into_iter();
                }
            }
        }
    }
}
