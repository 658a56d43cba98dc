//! The default backend: one sled 0.34.7 tree, with a power-loss durability barrier that
//! sled's own `flush` does not give (it uses `sync_file_range`, not fsync).

use super::commit_mark::{COUNTER_KEY, CommitMark, clamp_end, is_reserved};
use super::guard_cache::GuardCache;
use super::log_block::block_end;
use super::sled_lock::LockRelease;
use super::{Backend, GuardFailed, Sequencer, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

mod config;
mod flush;
mod open;
mod wal;
mod write_ahead;

pub use config::SledConfig;

/// A sled database in a folder. Cheap to clone: clones share one database, and opening
/// the same folder twice in one process also returns the same database.
#[derive(Clone)]
pub struct SledManager {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: sled::Db,
    config: SledConfig,
    /// Serialises guarded commits (a guard check, the log offsets and the batch are one
    /// atomic step) and holds the exact cache of guarded values and log ends.
    commit_lock: Mutex<CommitState>,
    /// Our own handle on sled's `db` file, for fsync.
    db_file: Option<File>,
    /// Highest blob file already fsynced (sled never fsyncs blob files).
    synced_blobs: Mutex<u64>,
    /// The count of durable commits kept beside sled's files, which catches sled
    /// recovering to an older state after damage.
    mark: Arc<CommitMark>,
    /// The write-ahead log, when the database runs with one (see `write_ahead`).
    wal: Option<Mutex<write_ahead::Logged>>,
    /// With the log: held for writing while a commit applies key by key, for reading by
    /// every read, so that no read sees half a commit.
    applying: RwLock<()>,
    /// Dropped after `db` (fields drop in order): waits until sled's threads have let go
    /// of the folder's lock, so that the folder can be opened again at once.
    _released: LockRelease,
}

impl std::fmt::Debug for SledManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledManager")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// What the commit lock protects.
#[derive(Default)]
struct CommitState {
    guards: GuardCache,
    sequencer: Sequencer,
}

impl SledManager {
    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn commit_lock(&self) -> Result<MutexGuard<'_, CommitState>> {
        self.inner
            .commit_lock
            .lock()
            .map_err(|_| Error::storage("commit", "commit lock poisoned by a panic"))
    }
}

/// A sled error, keeping its kind: I/O errors (a full disk among them) stay I/O errors,
/// and sled's own corruption report is [`Error::Corrupted`].
fn engine_error(operation: &'static str, err: sled::Error) -> Error {
    match err {
        sled::Error::Io(io) => Error::from_io(operation, &io),
        sled::Error::Corruption { at, .. } => Error::Corrupted {
            record: "sled's files".to_owned(),
            reason: match at {
                Some(at) => format!("sled found damage at {at:?} during {operation}"),
                None => format!("sled found damage during {operation}"),
            },
        },
        other => Error::storage(operation, other),
    }
}

impl Backend for SledManager {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if is_reserved(key) {
            return Ok(None);
        }
        let _reading = self.reading()?;
        self.inner
            .db
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| engine_error("read", e))
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = clamp_end(end);
        if start >= end {
            return Ok(Vec::new());
        }
        let _reading = self.reading()?;
        super::take_entries(self.inner.db.range(start..end), limit, reverse, |item| {
            let (k, v) = item.map_err(|e| engine_error("scan", e))?;
            Ok((k.to_vec(), v.to_vec()))
        })
    }

    fn visit_range(&self, start: &[u8], end: &[u8], visit: &mut super::Visitor<'_>) -> Result<()> {
        let end = clamp_end(end);
        if start >= end {
            return Ok(());
        }
        if self.inner.wal.is_some() {
            return self.visit_in_pages(start, end, visit);
        }
        for item in self.inner.db.range(start..end) {
            let (key, value) = item.map_err(|e| engine_error("scan", e))?;
            if !visit(&key, &value)? {
                break;
            }
        }
        Ok(())
    }

    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        if self.inner.wal.is_some() {
            // Logged unsynced and applied as one sled batch; the next flush syncs the log.
            return self
                .commit_logged(batch, false)
                .map(|(committed, _)| committed);
        }
        super::commit_mark::refuse_reserved(batch)?;
        let db = &self.inner.db;
        let mut state = self.commit_lock()?;
        let CommitState { guards, sequencer } = &mut *state;
        if let Err(failed) = check_guards(db, guards, batch)? {
            return Ok(Err(failed));
        }
        let assigned = sequencer.assign(&batch.appends, |log| highest_offset(db, log))?;
        let updates = guards.updates(&batch.ops);
        let mut sled_batch = sled::Batch::default();
        for op in &batch.ops {
            match op {
                WriteOp::Put { key, value } => sled_batch.insert(key.as_slice(), value.as_slice()),
                WriteOp::Delete { key } => sled_batch.remove(key.as_slice()),
            }
        }
        for (key, block) in &assigned.blocks {
            sled_batch.insert(key.as_slice(), block.as_slice());
        }
        let number = self.inner.mark.next()?;
        sled_batch.insert(COUNTER_KEY, &number.to_be_bytes());
        if let Err(e) = db.apply_batch(sled_batch) {
            guards.clear();
            sequencer.clear();
            return Err(engine_error("write batch", e));
        }
        let blocks = assigned.blocks.iter().map(|(key, _)| key.as_slice());
        guards.committed(updates, &batch.ops, blocks.chain([COUNTER_KEY]));
        sequencer.committed(assigned);
        self.inner.mark.committed(number);
        drop(state);
        Ok(Ok(()))
    }

    fn flush(&self) -> Result<()> {
        super::confirm_now(self.flush_deferred()?)
    }

    fn commit_durable(&self, batch: &WriteBatch) -> Result<super::Durable> {
        if self.inner.wal.is_none() {
            let committed = self.commit(batch)?;
            let confirmation = match committed {
                Ok(()) => self.flush_deferred()?,
                Err(_) => None,
            };
            return Ok((committed, confirmation));
        }
        self.commit_logged(batch, true)
    }

    fn flush_deferred(&self) -> Result<Option<super::Confirmation>> {
        if self.inner.wal.is_some() {
            // What is left: the records of commits that were not durable (`commit`), and
            // the mark's sync (see `Inner::count_in_mark`).
            let inner = Arc::clone(&self.inner);
            return Ok(Some(Box::new(move || {
                inner.sync_log()?;
                inner.mark.settle().map(|()| None)
            })));
        }
        // Everything applied so far; the flush below covers at least that, wherever it runs.
        let applied = self.inner.mark.applied();
        let inner = Arc::clone(&self.inner);
        Ok(Some(Box::new(move || {
            inner.flush_durably()?;
            match inner.mark.confirmation(applied) {
                Some(mark) => mark(),
                None => Ok(None),
            }
        })))
    }

    fn closing(&self) -> Result<()> {
        if self.inner.wal.is_none() {
            return Ok(());
        }
        // A checkpoint: the next open has no record to replay.
        let _state = self.commit_lock()?;
        self.inner.checkpoint()
    }

    fn size_on_disk(&self) -> Result<u64> {
        self.inner
            .db
            .size_on_disk()
            .map_err(|e| engine_error("size on disk", e))
    }

    fn copy_files_to(&self, dest: &Path) -> Result<u64> {
        // With a log, sled's own flusher may still be writing: a checkpoint first leaves
        // nothing for it, and the commit lock keeps commits out until the copy is done.
        let _state = self.commit_lock()?;
        if self.inner.wal.is_some() {
            self.inner.checkpoint()?;
        }
        super::engine_kind::copy_files(&self.inner.path, dest)
    }

    fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }
}

/// Checks `batch`'s guards against the cache, or sled: the first that fails.
fn check_guards(
    db: &sled::Db,
    guards: &mut GuardCache,
    batch: &WriteBatch,
) -> Result<Result<(), GuardFailed>> {
    for (index, guard) in batch.guards.iter().enumerate() {
        let checked = guards.check(
            &guard.key,
            guard.expected.as_deref(),
            || {
                db.get(&guard.key)
                    .map(|v| v.map(|v| v.to_vec()))
                    .map_err(|e| engine_error("check guard", e))
            },
            || {
                db.range(guard.key.as_slice()..)
                    .next()
                    .transpose()
                    .map(|first| first.map(|(k, v)| (k.to_vec(), v.to_vec())))
                    .map_err(|e| engine_error("check guard", e))
            },
        )?;
        if let Err(actual) = checked {
            return Ok(Err(GuardFailed { index, actual }));
        }
    }
    Ok(Ok(()))
}

/// The offset of the last entry of `log` (0 when empty).
fn highest_offset(db: &sled::Db, log: &[u8]) -> Result<u64> {
    match db.scan_prefix(log).next_back() {
        None => Ok(0),
        Some(item) => {
            let (key, block) = item.map_err(|e| engine_error("read log end", e))?;
            block_end(log, &key, &block)
        }
    }
}

impl SledManager {
    /// The configuration the database was opened with.
    pub fn config(&self) -> SledConfig {
        self.inner.config
    }
}
