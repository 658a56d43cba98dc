//! What readers of collection logs may see: only entries that are durable.
//!
//! The writer holds a log before it commits a group that appends to it, recording the
//! log's end as it was (everything up to there is durable). When the writer hands the
//! group's flush over, it seals the holds taken so far into one generation; the holds of
//! a generation are released once a step covering it (sled: the flush itself; the commit
//! mark's write) succeeded, which may be after later groups took holds of their own. A log's durable end is the lowest of
//! its holds. Then the subscribers are woken. A reader walks
//! the log first and asks for the hold afterwards: an entry it saw past a hold is not
//! durable yet and is dropped, and an entry it saw with no hold left was flushed before
//! the hold was released. So no reader, subscription or projection checkpoint ever acts on
//! an event that a crash could still take back.

use crate::backend::{Backend, LogAppend};
use crate::collection_log;
use crate::error::Result;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::watch;

/// Holds on logs with commits not yet flushed, and the signal that wakes log readers.
#[derive(Debug)]
pub(crate) struct Visibility {
    held: Mutex<Holds>,
    /// Changes after every flush that made log entries durable.
    appended: watch::Sender<u64>,
    /// A reader met entries not flushed yet and waits for them (cleared by the flush).
    flush_wanted: AtomicBool,
}

/// Per log, the end (highest offset) that is durable while later entries are not: for
/// the groups not flushed yet (`open`), and for each generation flushed by the engine but
/// not confirmed yet (`sealed`, oldest first).
#[derive(Debug, Default)]
struct Holds {
    open: HashMap<Vec<u8>, u64>,
    sealed: VecDeque<(u64, HashMap<Vec<u8>, u64>)>,
    next_generation: u64,
}

impl Default for Visibility {
    fn default() -> Self {
        Self {
            held: Mutex::default(),
            appended: watch::Sender::new(0),
            flush_wanted: AtomicBool::new(false),
        }
    }
}

impl Visibility {
    /// Called by the writer before it commits `appends`: holds each log not held yet by
    /// an unflushed group at its current end.
    pub(crate) fn hold(&self, engine: &dyn Backend, appends: &[LogAppend]) -> Result<()> {
        if appends.is_empty() {
            return Ok(());
        }
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let mut previous: Option<&[u8]> = None;
        for append in appends {
            // A group's appends mostly go to one log: look each run of them up once.
            if previous == Some(append.log.as_slice()) {
                continue;
            }
            previous = Some(&append.log);
            if !held.open.contains_key(&append.log) {
                let end = collection_log::highest_offset(engine, &append.log)?;
                held.open.insert(append.log.clone(), end);
            }
        }
        Ok(())
    }

    /// Called by a reader that met entries not flushed yet: true if it is the first to ask
    /// since the last flush (and so must wake the writer).
    pub(crate) fn want_flush(&self) -> bool {
        !self.flush_wanted.swap(true, Ordering::SeqCst)
    }

    /// Whether a reader waits for a flush.
    pub(crate) fn flush_wanted(&self) -> bool {
        self.flush_wanted.load(Ordering::SeqCst)
    }

    /// Called by the writer after a flush whose last step is done: everything committed
    /// is durable now.
    pub(crate) fn flushed(&self) {
        let generation = self.seal();
        self.release(generation);
    }

    /// Called by the writer when it hands a flush over: the holds taken so far become one
    /// generation, released by [`Visibility::release`] once a step covering it succeeded.
    pub(crate) fn seal(&self) -> u64 {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = held.next_generation;
        held.next_generation = generation.wrapping_add(1);
        let open = std::mem::take(&mut held.open);
        if !open.is_empty() {
            held.sealed.push_back((generation, open));
        }
        generation
    }

    /// Releases the holds of `generation` and of every older one.
    pub(crate) fn release(&self, generation: u64) {
        // Cleared first: a reader asking again after this sees the new state and wakes
        // the writer again.
        self.flush_wanted.store(false, Ordering::SeqCst);
        let released = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            let before = held.sealed.len();
            while held
                .sealed
                .front()
                .is_some_and(|(sealed, _)| *sealed <= generation)
            {
                held.sealed.pop_front();
            }
            held.sealed.len() != before
        };
        if released {
            self.appended.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The highest offset of `log` a reader may use, if some of its entries are not
    /// durable yet (`None`: all of them are). Ask after reading, never before.
    pub(crate) fn durable_end(&self, log: &[u8]) -> Option<u64> {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.sealed
            .iter()
            .filter_map(|(_, holds)| holds.get(log))
            .chain(held.open.get(log))
            .copied()
            .min()
    }

    /// A receiver that changes whenever new log entries became durable.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}
