//! What readers of collection logs may see: only entries that are durable.
//!
//! The writer holds a log before it commits a group that appends to it, recording the
//! log's end as it was (everything up to there is durable), and releases every hold after
//! the flush that makes the group durable; then it wakes the subscribers. A reader walks
//! the log first and asks for the hold afterwards: an entry it saw past a hold is not
//! durable yet and is dropped, and an entry it saw with no hold left was flushed before
//! the hold was released. So no reader, subscription or projection checkpoint ever acts on
//! an event that a crash could still take back.

use crate::backend::{Backend, LogAppend};
use crate::collection_log;
use crate::error::Result;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::watch;

/// Holds on logs with commits not yet flushed, and the signal that wakes log readers.
#[derive(Debug)]
pub(crate) struct Visibility {
    /// Per log: the end (highest offset) that is durable, while later entries are not.
    held: Mutex<HashMap<Vec<u8>, u64>>,
    /// Changes after every flush that made log entries durable.
    appended: watch::Sender<u64>,
    /// A reader met entries not flushed yet and waits for them (cleared by the flush).
    flush_wanted: AtomicBool,
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
    /// Called by the writer before it commits `appends`: holds each log not held yet at
    /// its current end.
    pub(crate) fn hold(&self, engine: &dyn Backend, appends: &[LogAppend]) -> Result<()> {
        if appends.is_empty() {
            return Ok(());
        }
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        for append in appends {
            if !held.contains_key(&append.log) {
                let end = collection_log::highest_offset(engine, &append.log)?;
                held.insert(append.log.clone(), end);
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

    /// Called by the writer after a flush: everything committed is durable now.
    pub(crate) fn flushed(&self) {
        // Cleared first: a reader asking again after this sees the new state and wakes
        // the writer again (commits and flushes never overlap: both hold the writer role).
        self.flush_wanted.store(false, Ordering::SeqCst);
        let had_holds = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            let any = !held.is_empty();
            held.clear();
            any
        };
        if had_holds {
            self.appended.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The highest offset of `log` a reader may use, if some of its entries are not
    /// durable yet (`None`: all of them are). Ask after reading, never before.
    pub(crate) fn durable_end(&self, log: &[u8]) -> Option<u64> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(log)
            .copied()
    }

    /// A receiver that changes whenever new log entries became durable.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}
