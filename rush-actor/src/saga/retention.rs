//! How long finished sagas stay in the saga index. The index exists so that a resume finds
//! the sagas that have not ended; a finished row only spares a resume a journal read, so it
//! is kept for a retention (default [`DEFAULT_SAGA_RETENTION`]) and then removed. The
//! finished saga's own journal stays: its status still answers.
//!
//! A row's finish time is the time its record was written (the row is marked finished
//! once), so the row's format does not change. Rows past retention are removed three ways:
//! at once when the retention is zero; by a sweep of a few rows (a rolling cursor over the
//! whole index) in the same batch as each saga's finish, so a process that never restarts
//! keeps its index bounded; and by every walk of the index ([`Sagas::resume_incomplete`],
//! [`Sagas::prune_finished`]).
//!
//! [`Sagas::resume_incomplete`]: super::Sagas::resume_incomplete
//! [`Sagas::prune_finished`]: super::Sagas::prune_finished

use super::manager::{INDEX_TABLE, IndexRow, Sagas};
use crate::error::{Error, Result};
use rush_store::{Table, TableRow, WriteOp};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How long a finished saga stays in the saga index by default: a day.
pub const DEFAULT_SAGA_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Index rows examined by the sweep that runs with each saga's finish.
const SWEEP_ROWS: usize = 32;

/// Index rows read per step of a walk of the whole index.
const INDEX_PAGE: usize = 256;

/// The retention setting and the sweep's place in the index.
#[derive(Debug)]
pub(crate) struct Retention {
    retention: Mutex<Duration>,
    /// The key the next sweep starts after (`None`: the beginning).
    cursor: Mutex<Option<String>>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            retention: Mutex::new(DEFAULT_SAGA_RETENTION),
            cursor: Mutex::default(),
        }
    }
}

impl Retention {
    pub(crate) fn get(&self) -> Duration {
        *self
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set(&self, retention: Duration) {
        *self
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = retention;
    }

    /// Whether `row` is a finished saga past retention at `now`.
    pub(crate) fn expired(&self, row: &TableRow<IndexRow>, now: SystemTime) -> bool {
        row.value.finished && past(row.written_at, now, self.get())
    }

    /// Removals of the finished rows past retention among the next few rows of the index
    /// after the sweep's cursor, which moves on (back to the start at the end). Blocking.
    pub(crate) fn sweep(
        &self,
        index: &Table<IndexRow>,
        now: SystemTime,
    ) -> rush_store::Result<Vec<WriteOp>> {
        let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        let rows = index.page("", cursor.as_deref(), SWEEP_ROWS)?;
        *cursor = if rows.len() < SWEEP_ROWS {
            None
        } else {
            rows.last().map(|row| row.key.clone())
        };
        Ok(rows
            .iter()
            .filter(|row| self.expired(row, now))
            .map(|row| index.delete_op(&row.key))
            .collect())
    }
}

/// One page of the saga index, past-retention rows removed.
pub(super) struct IndexPage {
    /// The rows of sagas not known to have ended.
    pub(super) unfinished: Vec<IndexRow>,
    /// How many finished rows past retention were removed.
    pub(super) pruned: u64,
    /// The key the next page starts after; `None` when this page was the last.
    pub(super) next: Option<String>,
}

impl Sagas {
    /// How long a finished saga stays in the saga index (default
    /// [`DEFAULT_SAGA_RETENTION`](super::DEFAULT_SAGA_RETENTION), a day). The index lists
    /// the sagas a resume must look at; past the retention a finished saga's row is
    /// removed, while its journal stays, so [`Sagas::status`] still answers and a start of
    /// the same id still returns its outcome. Zero removes the row as the saga finishes.
    /// Applies from now on to every row, older ones included.
    pub fn set_finished_retention(&self, retention: Duration) -> &Self {
        self.retention().set(retention);
        self
    }

    /// How long a finished saga stays in the saga index: see
    /// [`Sagas::set_finished_retention`].
    pub fn finished_retention(&self) -> Duration {
        self.retention().get()
    }

    /// Removes every finished saga past the retention from the saga index, reading it a
    /// page at a time; returns how many rows were removed. Not needed for the index to
    /// stay bounded (each finishing saga sweeps a few rows, and
    /// [`Sagas::resume_incomplete`] prunes as it reads): it reclaims everything at once.
    ///
    /// # Errors
    ///
    /// [`Error::Journal`] when a page of the saga index cannot be read or its rows past
    /// retention cannot be removed (the pages before it stay pruned).
    pub async fn prune_finished(&self) -> Result<u64> {
        let mut pruned = 0u64;
        let mut after = None;
        loop {
            let page = self.index_page(after).await?;
            pruned = pruned.saturating_add(page.pruned);
            match page.next {
                Some(key) => after = Some(key),
                None => return Ok(pruned),
            }
        }
    }

    /// Reads the page of the saga index after `after` on the database's threads, removes its
    /// finished rows past retention (one durable batch), and returns its other rows.
    pub(super) async fn index_page(&self, after: Option<String>) -> Result<IndexPage> {
        let sagas = self.clone();
        let db = self.persistence().database().clone();
        let read = db.run_blocking("read saga index", move || {
            let (index, retention) = (sagas.index(), sagas.retention());
            let rows = index.page("", after.as_deref(), INDEX_PAGE)?;
            let next = (rows.len() >= INDEX_PAGE)
                .then(|| rows.last().map(|row| row.key.clone()))
                .flatten();
            let now = SystemTime::now();
            let mut prune = Vec::new();
            let mut unfinished = Vec::new();
            for row in rows {
                if retention.expired(&row, now) {
                    prune.push(index.delete_op(&row.key));
                } else if !row.value.finished {
                    unfinished.push(row.value);
                }
            }
            let pruned = prune.len() as u64;
            if !prune.is_empty() {
                index.write(prune)?;
            }
            Ok(IndexPage {
                unfinished,
                pruned,
                next,
            })
        });
        read.await.map_err(|source| Error::Journal {
            entity: INDEX_TABLE.into(),
            source,
        })
    }
}

/// Whether something written at `written_at` is older than `retention` at `now`. A zero
/// retention has passed at once, even for a time ahead of the clock.
fn past(written_at: SystemTime, now: SystemTime, retention: Duration) -> bool {
    retention.is_zero()
        || now
            .duration_since(written_at)
            .is_ok_and(|age| age >= retention)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_past_retention_once_it_is_as_old_as_the_retention() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3600);
        assert!(!past(now - hour + Duration::from_micros(1), now, hour));
        assert!(past(now - hour, now, hour));
        assert!(past(now - 2 * hour, now, hour));
        // A clock that went back keeps the row, unless the retention is zero.
        assert!(!past(now + hour, now, hour));
        assert!(past(now + hour, now, Duration::ZERO));
    }
}
