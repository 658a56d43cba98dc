//! The storage engine behind a store: ordered byte keys, an atomic guarded multi-key
//! write, and an explicit durability barrier. A backend sees only keys and sealed bytes.
//!
//! [`SledManager`] is the default; [`MemoryManager`] has the same semantics for tests.
//! The trait is public so that tests (and other engines) can plug in, for example a
//! backend that fails after a countdown.

pub(crate) mod commit_mark;
pub mod engine_kind;
#[cfg(any(feature = "sled", feature = "redb"))]
mod guard_cache;
pub(crate) mod log_block;
pub(crate) mod memory_manager;
#[cfg(feature = "postgres")]
pub(crate) mod postgres_manager;
#[cfg(feature = "redb")]
pub(crate) mod redb_manager;
pub(crate) mod sequencer;
#[cfg(feature = "sled")]
mod sled_files;
#[cfg(feature = "sled")]
mod sled_lock;
#[cfg(feature = "sled")]
pub(crate) mod sled_manager;

use crate::error::{Error, Result};
use std::fmt::Debug;

/// What [`Backend::visit_range`] calls for each entry: `Ok(true)` to go on.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

/// One write of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Removes `key` (absent keys are fine).
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

/// A condition of a [`WriteBatch`]: `key` must currently hold `expected` (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// The key that is checked.
    pub key: Vec<u8>,
    /// The value it must hold for the batch to apply.
    pub expected: Option<Vec<u8>>,
}

/// An entry appended to an ordered log at the log's next offset, assigned by the backend
/// when the batch commits: offsets are gap-free and in commit order, so a reader that has
/// seen offset `n` has seen every entry below it. The appends of one log in one commit
/// are stored together as one block at `log ‖ first offset` (FORMAT.md), so a
/// group commit of a thousand events adds one key, not a thousand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAppend {
    /// The log: its blocks are stored at `log ‖ first offset` (u64, big-endian, offsets
    /// from 1). No other key may start with it.
    pub log: Vec<u8>,
    /// The entry.
    pub value: Vec<u8>,
}

/// Writes applied atomically, only if every guard holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// Conditions checked atomically with the writes.
    pub guards: Vec<Guard>,
    /// The writes, applied in order (a later write to the same key wins).
    pub ops: Vec<WriteOp>,
    /// Log entries, numbered at commit in this order, after the writes.
    pub appends: Vec<LogAppend>,
}

impl WriteBatch {
    /// Moves all guards and writes of `other` in (used to group many entities' appends).
    pub fn extend(&mut self, other: WriteBatch) {
        self.guards.extend(other.guards);
        self.ops.extend(other.ops);
        self.appends.extend(other.appends);
    }

    /// Total bytes of keys and values written.
    pub fn payload_bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                WriteOp::Put { key, value } => key.len() + value.len(),
                WriteOp::Delete { key } => key.len(),
            })
            .chain(self.appends.iter().map(|a| a.log.len() + 8 + a.value.len()))
            .sum()
    }
}

/// A guard that did not hold: nothing of the batch was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardFailed {
    /// Index of the first failing guard in [`WriteBatch::guards`].
    pub index: usize,
    /// What the key holds instead.
    pub actual: Option<Vec<u8>>,
}

/// The part of making writes durable that may run off the writer's thread, before they
/// are acknowledged (see [`Backend::flush_deferred`]): the engine's own sync where it may
/// run beside later commits (sled), and the commit mark's write. It may leave a
/// [`Settle`], run after the answers.
pub type Confirmation = Box<dyn FnOnce() -> Result<Option<Settle>> + Send>;

/// Work a [`Confirmation`] leaves for after the acknowledgements, because acknowledged
/// writes do not depend on it (the commit mark's sync: the mark is written before the
/// answers, so a process crash keeps it, and synced after them). The database core runs
/// it after the answers, before the next confirmation's answers are sent (beside that
/// confirmation, or before it); an error is reported by a later confirmation.
pub type Settle = Box<dyn FnOnce() -> Result<()> + Send>;

/// Runs `step` and the [`Settle`] it leaves, now: what [`Backend::flush`] does with the
/// step of [`Backend::flush_deferred`].
///
/// # Errors
///
/// The first error of the two.
pub fn confirm_now(step: Option<Confirmation>) -> Result<()> {
    match step {
        None => Ok(()),
        Some(step) => step()?.map_or(Ok(()), |settle| settle()),
    }
}

/// What [`Backend::commit_durable`] returns: the commit's outcome and the step left.
pub type Durable = (std::result::Result<(), GuardFailed>, Option<Confirmation>);

/// A key-value engine a [`Store`](crate::Store) can journal to.
///
/// Contract, which [`MemoryManager`] and [`SledManager`] both keep and their shared tests check:
/// - keys compare as byte strings; `scan` returns them in that order (or reversed);
/// - `commit` is atomic and serialisable with every other `commit` on the same database:
///   either all guards hold and all ops apply, or nothing changes;
/// - a commit numbers its [`LogAppend`]s after the highest offset stored in each log, so
///   offsets are gap-free and increase in commit order (readers never see `n + 1` before
///   `n`), and stores each log's appends as one block at `log ‖ first offset`;
/// - after `flush` returns, every commit that returned before it was called survives a
///   crash of the process (and, where the engine says so, of the machine);
/// - a failure keeps its kind: [`Error::Io`] (a full disk is [`Error::DiskFull`], a lost
///   connection an [`Error::Io`] too), [`Error::Corrupted`] for damage the engine finds,
///   [`Error::Storage`] for the rest. These are the "engine failures" below.
pub trait Backend: Send + Sync + Debug + 'static {
    /// The value of `key`.
    ///
    /// # Errors
    ///
    /// Engine failures (see the trait).
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` entries with `start <= key < end`, ascending, or descending when `reverse`.
    ///
    /// # Errors
    ///
    /// Engine failures (see the trait).
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Calls `visit` with each entry `start <= key < end`, ascending, until it returns
    /// `Ok(false)` or an error. The default pages through [`Backend::scan`]; an engine
    /// overrides it to lend its own buffers, so that a replay copies nothing per record.
    ///
    /// # Errors
    ///
    /// Engine failures as [`Backend::scan`]'s, and the first error `visit` returns, as it
    /// is.
    fn visit_range(&self, start: &[u8], end: &[u8], visit: &mut Visitor<'_>) -> Result<()> {
        const PAGE: usize = 512;
        let mut from = start.to_vec();
        loop {
            let page = self.scan(&from, end, PAGE, false)?;
            for (key, value) in &page {
                if !visit(key, value)? {
                    return Ok(());
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => {
                    from.clone_from(last);
                    from.push(0);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Applies `batch` atomically if its guards hold; `Ok(Err(_))` when a guard failed.
    ///
    /// # Errors
    ///
    /// A guard that does not hold is `Ok(Err(_))`, not an error. A batch that writes under
    /// the engine's reserved keys ([`RESERVED_PREFIX`](crate::engine_kit::RESERVED_PREFIX))
    /// is [`Error::InvalidArgument`], with nothing written. Engine failures (see the
    /// trait), after which the outcome is unknown.
    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>>;

    /// Durability barrier: see the trait's contract.
    ///
    /// # Errors
    ///
    /// Engine failures (see the trait); commits before it may then not be durable.
    fn flush(&self) -> Result<()>;

    /// [`Backend::flush`] with the part that may run later handed back as a step instead
    /// of run: what is left to do before anything may be acknowledged (the engine's own
    /// sync where later commits may run beside it, and the commit mark's write, see
    /// [`engine_kit`](crate::engine_kit)). The database core runs the step on a thread of
    /// its own while the writer commits the next groups, so the step must make durable
    /// every commit applied before this call, whatever is committed while it runs; and a
    /// later flush's step must cover every earlier one: of several steps waiting, only
    /// the newest runs. The default flushes and leaves nothing; sled leaves its whole
    /// flush; redb syncs here (its write transaction is exclusive, so a commit could not
    /// run beside the sync anyway) and leaves the mark.
    ///
    /// # Errors
    ///
    /// As [`Backend::flush`]; the [`Confirmation`] returns its own error when it runs.
    fn flush_deferred(&self) -> Result<Option<Confirmation>> {
        self.flush().map(|()| None)
    }

    /// Commits `batch` and makes it, and every commit before it, durable, leaving the last
    /// step as [`Backend::flush_deferred`] does. The default commits and then flushes; an
    /// engine whose commit can be durable by itself (redb: one transaction with its fsync)
    /// overrides it to save a step. A failed guard writes and flushes nothing.
    ///
    /// # Errors
    ///
    /// As [`Backend::commit`] and then [`Backend::flush_deferred`].
    fn commit_durable(&self, batch: &WriteBatch) -> Result<Durable> {
        let committed = self.commit(batch)?;
        let confirmation = match committed {
            Ok(()) => self.flush_deferred()?,
            Err(_) => None,
        };
        Ok((committed, confirmation))
    }

    /// Called by the database core when it stops, before its last flush: work that makes
    /// the next open cheaper (sled with its write-ahead log: a checkpoint, so that the
    /// next open has nothing to replay). The default does nothing. The core logs a
    /// failure and stops anyway: the flush after it makes everything acknowledged durable.
    ///
    /// # Errors
    ///
    /// Engine failures (see the trait).
    fn closing(&self) -> Result<()> {
        Ok(())
    }

    /// Bytes the database takes on disk (0 for memory).
    ///
    /// # Errors
    ///
    /// Engine failures (see the trait).
    fn size_on_disk(&self) -> Result<u64>;

    /// Copies the engine's files into the folder `dest` (created), returning the bytes
    /// copied. The database core calls it with every commit flushed and the writer held,
    /// so the files are a consistent image (`Database::backup`). The default: this engine
    /// keeps no files to copy.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] from an engine without files (the default:
    /// [`MemoryManager`], PostgreSQL); [`Error::Io`] or [`Error::DiskFull`] when a file
    /// cannot be listed, copied or created.
    fn copy_files_to(&self, dest: &std::path::Path) -> Result<u64> {
        let _ = dest;
        Err(Error::InvalidArgument(
            "this engine keeps no files to copy".into(),
        ))
    }

    /// A signal that changes when another process appended to a log of this database, for
    /// the engines several processes share (PostgreSQL: its `NOTIFY`s); `None`, the
    /// default, for an engine one process owns. Subscriptions wait on it beside the
    /// database's own signal, and still look every poll interval without it.
    fn appended_elsewhere(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Which database this handle reaches: handles that share one database (clones of one
    /// engine handle) return the same value, so a process runs one writer per database.
    /// The default is this handle's address, right for a handle kept in one `Arc`.
    fn identity(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>() as usize
    }
}

/// A key and its value, as scans return them.
#[cfg(any(feature = "sled", feature = "redb"))]
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

/// Up to `limit` entries of an engine's key range, ascending or (`reverse`) descending,
/// each made by `entry`: the shape of every engine's [`Backend::scan`].
#[cfg(any(feature = "sled", feature = "redb"))]
pub(crate) fn take_entries<T, E>(
    range: impl DoubleEndedIterator<Item = T>,
    limit: usize,
    reverse: bool,
    mut entry: impl FnMut(T) -> std::result::Result<Entry, E>,
) -> std::result::Result<Vec<Entry>, E> {
    let mut out = Vec::with_capacity(limit.min(1024));
    if reverse {
        for item in range.rev().take(limit) {
            out.push(entry(item)?);
        }
    } else {
        for item in range.take(limit) {
            out.push(entry(item)?);
        }
    }
    Ok(out)
}

/// A shared engine is an engine: `Arc<dyn Backend>` (or `Arc` of any engine) can be
/// handed wherever one is asked for, and reaches the same database.
impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        (**self).scan(start, end, limit, reverse)
    }

    fn visit_range(&self, start: &[u8], end: &[u8], visit: &mut Visitor<'_>) -> Result<()> {
        (**self).visit_range(start, end, visit)
    }

    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        (**self).commit(batch)
    }

    fn flush(&self) -> Result<()> {
        (**self).flush()
    }

    fn flush_deferred(&self) -> Result<Option<Confirmation>> {
        (**self).flush_deferred()
    }

    fn commit_durable(&self, batch: &WriteBatch) -> Result<Durable> {
        (**self).commit_durable(batch)
    }

    fn closing(&self) -> Result<()> {
        (**self).closing()
    }

    fn size_on_disk(&self) -> Result<u64> {
        (**self).size_on_disk()
    }

    fn copy_files_to(&self, dest: &std::path::Path) -> Result<u64> {
        (**self).copy_files_to(dest)
    }

    fn appended_elsewhere(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        (**self).appended_elsewhere()
    }

    fn identity(&self) -> usize {
        (**self).identity()
    }
}

pub use log_block::{BlockEntries, block_end, decode_block, offset_of};
pub use memory_manager::MemoryManager;
#[cfg(feature = "postgres")]
pub use postgres_manager::{PostgresConfig, PostgresManager, PostgresTls};
#[cfg(feature = "redb")]
pub use redb_manager::{RedbConfig, RedbManager};
pub use sequencer::{Assigned, Sequencer};
#[cfg(feature = "sled")]
pub use sled_manager::{SledConfig, SledManager};

#[cfg(test)]
mod tests;
