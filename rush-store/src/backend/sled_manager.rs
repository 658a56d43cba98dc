//! The default backend: one sled 0.34.7 tree, with a power-loss durability barrier that
//! sled's own `flush` does not give (it uses `sync_file_range`, not fsync).

use super::commit_mark::{COUNTER_KEY, CommitMark, clamp_end, is_reserved};
use super::guard_cache::GuardCache;
use super::log_block::block_end;
use super::sled_lock::{LockRelease, is_locked, wait_until_unlocked};
use super::{Backend, GuardFailed, Sequencer, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};

mod config;
mod flush;
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

/// Forgets `folder` in this process's registry once its database is closed.
fn forget_closed(folder: &Path) {
    if let Ok(mut open) = open_databases().lock()
        && open
            .get(folder)
            .is_some_and(|entry| entry.strong_count() == 0)
    {
        open.remove(folder);
    }
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

fn open_databases() -> &'static Mutex<HashMap<PathBuf, Weak<Inner>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = OnceLock::new();
    OPEN.get_or_init(Mutex::default)
}

impl SledManager {
    /// Opens (or creates) the database in folder `path` with [`SledConfig::default`].
    ///
    /// # Errors
    ///
    /// As [`SledManager::with_config`].
    pub fn new(path: impl AsRef<Path>) -> Result<Self> {
        Self::with_config(path, SledConfig::default())
    }

    /// Opens (or creates) the database in `path` with `config`. When this process already
    /// has the folder open, the open database is returned and `config` is ignored.
    ///
    /// # Errors
    ///
    /// - [`Error::DatabaseLocked`]: another process has the folder open.
    /// - [`Error::Corrupted`]: sled's files or the commit mark are damaged, or sled holds
    ///   fewer commits than were acknowledged (see [`SledConfig::commit_mark`]); nothing is
    ///   changed.
    /// - [`Error::Io`] or [`Error::DiskFull`]: the folder cannot be created or its files
    ///   opened; other sled failures are [`Error::Storage`].
    pub fn with_config(path: impl AsRef<Path>, config: SledConfig) -> Result<Self> {
        let path = path.as_ref();
        std::fs::create_dir_all(path).map_err(|e| Error::from_io("create database folder", &e))?;
        let path = path
            .canonicalize()
            .map_err(|e| Error::from_io("resolve database folder", &e))?;
        // The registry holds only weak handles: a panic elsewhere leaves it consistent.
        let mut open = open_databases()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match open.get(&path).map(Weak::upgrade) {
            Some(Some(inner)) => return Ok(Self { inner }),
            // Closing in this process right now (its last handle was dropped on another
            // thread): wait for that close, not for a timer.
            Some(None) => wait_until_unlocked(&path.join("db")),
            None => {}
        }
        // sled 0.34.7 can panic on damaged files ("tried to serialize Uninitialized"):
        // that is damage, reported as such, and the panic stays here.
        let db = catch_unwind(AssertUnwindSafe(|| open_sled(&path, &config))).unwrap_or_else(
            |panic| {
                Err(Error::Corrupted {
                    record: format!("sled's files in {}", path.display()),
                    reason: format!(
                        "sled panicked while opening them: {}",
                        crate::error::panic_message(&*panic)
                    ),
                })
            },
        )?;
        let sled_commits = stored_commits(&db)?;
        // A log left by an earlier open is replayed whatever this open asks for: its
        // records were acknowledged. The mark is checked against what sled holds then.
        let opened = write_ahead::open(&path, &config, sled_commits)?;
        let commits = write_ahead::Opened::commits(opened.as_ref(), sled_commits);
        let mark = Arc::new(CommitMark::open(
            if opened.is_some() {
                "sled with its write-ahead log"
            } else {
                "sled"
            },
            &path,
            commits,
            config.sync_to_disk && config.commit_mark,
        )?);
        let db_file = if config.sync_to_disk {
            Some(
                File::open(path.join("db"))
                    .map_err(|e| Error::from_io("open db file for fsync", &e))?,
            )
        } else {
            None
        };
        let mut inner = Inner {
            path: path.clone(),
            db,
            config,
            commit_lock: Mutex::new(CommitState::default()),
            db_file,
            synced_blobs: Mutex::new(0),
            mark,
            wal: None,
            applying: RwLock::new(()),
            _released: LockRelease::new(&path, forget_closed),
        };
        match write_ahead::finish_open(&inner, opened) {
            Ok(wal) => inner.wal = wal,
            Err(error) => {
                // Closing takes the registry's lock (see `forget_closed`).
                drop(open);
                drop(inner);
                return Err(error);
            }
        }
        let inner = Arc::new(inner);
        open.insert(path, Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// Opens the database that already exists in folder `path`, never creating one (tools
    /// that inspect a database must not leave an empty one behind a typo).
    ///
    /// # Errors
    ///
    /// [`Error::NotADatabase`] for a missing folder, one without sled's `conf` and `db`
    /// files, or one sled cannot open; otherwise as [`SledManager::with_config`].
    pub fn open_existing(path: impl AsRef<Path>, config: SledConfig) -> Result<Self> {
        let path = path.as_ref();
        let not_a_database = |reason: &str| Error::NotADatabase {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        if !path.exists() {
            return Err(not_a_database("the folder does not exist"));
        }
        if !path.is_dir() {
            return Err(not_a_database("it is not a folder"));
        }
        // sled 0.34.7 writes both files when it creates a database, before anything else.
        if !path.join("conf").is_file() || !path.join("db").is_file() {
            return Err(not_a_database(
                "the folder holds no sled database (no `conf` and `db` files)",
            ));
        }
        Self::with_config(path, config).map_err(|e| match e {
            Error::Storage {
                operation: "open database",
                message,
            }
            | Error::Io {
                operation: "open database",
                message,
                ..
            } => not_a_database(&format!("sled cannot open it ({message})")),
            other => other,
        })
    }

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

fn open_sled(path: &Path, config: &SledConfig) -> Result<sled::Db> {
    let locked = || Error::DatabaseLocked {
        path: path.to_path_buf(),
    };
    // Asked before sled is, so that a folder in use is told apart without reading sled's
    // message; and asked again if sled fails, in case the other process came in between.
    if is_locked(&path.join("db")) {
        return Err(locked());
    }
    super::sled_files::check_db_file(path)?;
    super::commit_mark::check_before_open(path)?;
    sled::Config::new()
        .path(path)
        .cache_capacity(config.cache_capacity)
        .flush_every_ms(Some(config.flush_every_ms))
        .use_compression(false)
        .open()
        .map_err(|e| match e {
            _ if is_locked(&path.join("db")) => locked(),
            // What sled says of a `conf` it cannot read (damaged, or not sled's).
            sled::Error::Unsupported(message) => Error::Corrupted {
                record: format!("sled's files in {}", path.display()),
                reason: format!("sled cannot read them: {message}"),
            },
            other => engine_error("open database", other),
        })
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

/// The commit counter sled holds (0 for a database that has none yet).
fn stored_commits(db: &sled::Db) -> Result<u64> {
    let stored = db
        .get(COUNTER_KEY)
        .map_err(|e| engine_error("read the commit counter", e))?;
    super::commit_mark::decode_counter(stored.as_deref())
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
