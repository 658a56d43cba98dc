//! Pages a subscription reads before it needs them, so that a catch-up keeps both the
//! log walk and the decoding of several pages going at once instead of one page at a
//! time (one page's read leaves cores idle while its walk runs and between its steps).
//!
//! A page is read ahead only where the log is known to hold entries: the page read last
//! said how many lay past its end when it was read (its backlog). Durable entries never
//! change, so a page read ahead from offset `s` is the page a read from `s` gives later.
//! A read ahead is used only when it starts exactly where the subscription is; any other
//! is dropped (it then finishes on the database's threads and is thrown away).

use super::PAGE;
use crate::error::{Error, Result};
use crate::persistent_actor::PersistentActor;
use crate::query::{EventFilter, EventQuery, StoredEvent};
use std::collections::VecDeque;
use std::future::Future;
use tokio::task::JoinHandle;

/// Pages read ahead at most, beyond the one being handed out and the next one: a
/// subscription then holds at most `2 + AHEAD` pages of events.
pub(super) const AHEAD: usize = 3;

/// One page read: the events the filter lets through, the offset after the entries
/// examined, and the backlog past them when they were read.
pub(super) type PageRead<E> = Result<(Vec<StoredEvent<E>>, u64, u64)>;

/// What a subscription reads pages with: its query and filter, cloned into each read.
pub(super) struct PageReader<A: PersistentActor> {
    pub(super) query: EventQuery<A>,
    pub(super) filter: EventFilter,
}

impl<A: PersistentActor> Clone for PageReader<A> {
    fn clone(&self) -> Self {
        Self {
            query: self.query.clone(),
            filter: self.filter.clone(),
        }
    }
}

/// A page being read ahead from `start`. Dropping it stops waiting for it.
struct Ahead<E> {
    start: u64,
    task: JoinHandle<PageRead<E>>,
}

impl<E> Drop for Ahead<E> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The pages being read ahead, in offset order, each starting where the one before ends.
pub(super) struct ReadAhead<E> {
    pages: VecDeque<Ahead<E>>,
}

impl<E> Default for ReadAhead<E> {
    fn default() -> Self {
        Self {
            pages: VecDeque::new(),
        }
    }
}

impl<E: Send + Sync + 'static> ReadAhead<E> {
    /// The page from `from`: the one read ahead if it starts there, otherwise `read`'s
    /// (and the pages read ahead are dropped: they were read for another place).
    pub(super) async fn take<F>(&mut self, from: u64, read: F) -> PageRead<E>
    where
        F: Future<Output = PageRead<E>>,
    {
        match self.pages.pop_front() {
            Some(mut ahead) if ahead.start == from => match (&mut ahead.task).await {
                Ok(page) => page,
                Err(join) if join.is_panic() => Err(Error::panicked(
                    "read a subscription page ahead",
                    &*join.into_panic(),
                )),
                // Aborted only by the runtime shutting down.
                Err(_) => Err(Error::Shutdown),
            },
            _ => {
                self.pages.clear();
                read.await
            }
        }
    }

    /// After a page that ended at `end` with `backlog` entries past it: starts reading the
    /// pages from `end` on, at most [`AHEAD`] at once, as far as the backlog reaches.
    /// Outside a tokio runtime nothing is read ahead.
    pub(super) fn extend<A>(&mut self, reader: &PageReader<A>, end: u64, backlog: u64)
    where
        A: PersistentActor<Event = E>,
    {
        if self.pages.front().is_some_and(|ahead| ahead.start != end) {
            self.pages.clear();
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let page = PAGE as u64;
        let past_backlog = end.saturating_add(backlog);
        while self.pages.len() < AHEAD {
            let start = self
                .pages
                .back()
                .map_or(end, |ahead| ahead.start.saturating_add(page));
            if start >= past_backlog {
                return;
            }
            let reader = reader.clone();
            let task = runtime.spawn(async move { reader.read(start).await });
            self.pages.push_back(Ahead { start, task });
        }
    }
}

#[cfg(test)]
mod tests;
