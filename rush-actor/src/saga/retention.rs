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

use super::manager::IndexRow;
use rush_store::{Table, TableRow, WriteOp};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How long a finished saga stays in the saga index by default: a day.
pub const DEFAULT_SAGA_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Index rows examined by the sweep that runs with each saga's finish.
const SWEEP_ROWS: usize = 32;

/// Index rows read per step of a walk of the whole index.
pub(crate) const INDEX_PAGE: usize = 256;

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
