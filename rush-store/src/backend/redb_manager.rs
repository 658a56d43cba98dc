//! The redb engine (feature `redb`): one redb 4.x file, `rush.redb`, in the database
//! folder. Commits are redb write transactions; [`Backend::flush`] is a durable commit,
//! which fsyncs (redb's own two-slot commit, checksummed). Every redb call runs under
//! `catch_unwind`: redb checks its files with assertions that panic in debug builds, and
//! damage must come out as [`Error::Corrupted`], never as a panic.

use super::commit_mark::{CommitMark, clamp_end, is_reserved};
use super::guard_cache::GuardCache;
use super::log_block::block_end;
use super::{Backend, GuardFailed, Sequencer, WriteBatch};
use crate::error::{Error, Result};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

mod transaction;

/// Every record Rush writes.
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rush");
/// The engine's own counter of commits (see `commit_mark.rs`), outside the record table
/// so that no scan meets it.
const ENGINE: TableDefinition<&str, u64> = TableDefinition::new("rush-engine");
const COMMITS: &str = "commits";

/// The file inside the database folder.
pub const REDB_FILE: &str = "rush.redb";

/// How a redb database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedbConfig {
    /// redb's page cache, in bytes (default 256 MiB).
    pub cache_capacity: usize,
    /// Keep the commit mark (default `true`): see
    /// [`SledConfig::commit_mark`](crate::SledConfig::commit_mark). redb falls back to its
    /// previous commit when the newest one is damaged, silently without the mark.
    pub commit_mark: bool,
}

impl Default for RedbConfig {
    fn default() -> Self {
        Self {
            cache_capacity: 256 * 1024 * 1024,
            commit_mark: true,
        }
    }
}

/// A redb database in a folder. Cheap to clone: clones share one database, and opening
/// the same folder twice in one process returns the same database.
#[derive(Clone)]
pub struct RedbManager {
    inner: Arc<Inner>,
}

struct Inner {
    folder: PathBuf,
    db: redb::Database,
    config: RedbConfig,
    /// Serialises commits with the cache of log ends (redb has one writer at a time
    /// anyway; the lock makes the cache exact).
    sequencer: Mutex<Sequencer>,
    /// What guards check, cached (exact: every write of this file goes through
    /// `commit_with`, under the sequencer's lock, and redb's file lock keeps other
    /// processes out). Locked only while the sequencer's lock is held.
    guards: Mutex<GuardCache>,
    mark: Arc<CommitMark>,
    /// Dropped after `db` (fields drop in order): once redb has let go of its file, the
    /// folder leaves the registry, so an open waiting for this close can go on.
    _forget: Forget,
}

/// Forgets a closed folder in this process's registry.
struct Forget(PathBuf);

impl Drop for Forget {
    fn drop(&mut self) {
        let mut open = open_databases()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A new handle may already have taken the folder's place: leave that one.
        if open
            .get(&self.0)
            .is_some_and(|entry| entry.strong_count() == 0)
        {
            open.remove(&self.0);
        }
    }
}

/// How long an open waits for this process to finish closing the same folder.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl std::fmt::Debug for RedbManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbManager")
            .field("folder", &self.inner.folder)
            .finish_non_exhaustive()
    }
}

fn open_databases() -> &'static Mutex<HashMap<PathBuf, Weak<Inner>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = OnceLock::new();
    OPEN.get_or_init(Mutex::default)
}

impl RedbManager {
    /// Opens (or creates) the database in folder `path` with [`RedbConfig::default`].
    ///
    /// # Errors
    ///
    /// As [`RedbManager::with_config`].
    pub fn new(path: impl AsRef<Path>) -> Result<Self> {
        Self::with_config(path, RedbConfig::default())
    }

    /// Opens (or creates) the database in `path` with `config`. When this process already
    /// has the folder open, the open database is returned and `config` is ignored.
    ///
    /// # Errors
    ///
    /// - [`Error::DatabaseLocked`]: another process has the database open.
    /// - [`Error::Corrupted`]: `rush.redb` or the commit mark is damaged (redb panicking on
    ///   it included), or redb holds fewer commits than were acknowledged; nothing is
    ///   changed.
    /// - [`Error::Io`] or [`Error::DiskFull`]: the folder cannot be created or the file
    ///   opened; other redb failures are [`Error::Storage`].
    pub fn with_config(path: impl AsRef<Path>, config: RedbConfig) -> Result<Self> {
        let path = path.as_ref();
        std::fs::create_dir_all(path).map_err(|e| Error::from_io("create database folder", &e))?;
        Self::open_folder(path, config)
    }

    /// Opens the database that already exists in folder `path`, never creating one.
    ///
    /// # Errors
    ///
    /// [`Error::NotADatabase`] when the folder holds no `rush.redb`; otherwise as
    /// [`RedbManager::with_config`].
    pub fn open_existing(path: impl AsRef<Path>, config: RedbConfig) -> Result<Self> {
        let path = path.as_ref();
        if !path.join(REDB_FILE).is_file() {
            return Err(Error::NotADatabase {
                path: path.to_path_buf(),
                reason: format!("the folder holds no redb database (no `{REDB_FILE}`)"),
            });
        }
        Self::open_folder(path, config)
    }

    fn open_folder(path: &Path, config: RedbConfig) -> Result<Self> {
        let folder = path
            .canonicalize()
            .map_err(|e| Error::from_io("resolve database folder", &e))?;
        let started = std::time::Instant::now();
        let mut open = loop {
            let open = open_databases()
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match open.get(&folder).map(Weak::upgrade) {
                Some(Some(inner)) => return Ok(Self { inner }),
                // Its last handle is being dropped on another thread: wait for the close
                // (the registry lock is let go meanwhile, the close needs it).
                Some(None) if started.elapsed() < CLOSE_WAIT => {
                    drop(open);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                _ => break open,
            }
        };
        let file = folder.join(REDB_FILE);
        super::commit_mark::check_before_open(&folder)?;
        let db = guarded(&file, "open database", || {
            redb::Builder::new()
                .set_cache_size(config.cache_capacity)
                .create(&file)
                .map_err(Failure::from)
        })?;
        let commits = guarded(&file, "open database", || {
            let txn = db.begin_write()?;
            txn.open_table(RECORDS)?;
            let commits = txn.open_table(ENGINE)?.get(COMMITS)?.map(|v| v.value());
            txn.commit()?;
            Ok(commits.unwrap_or(0))
        })?;
        let mark = Arc::new(CommitMark::open(
            "redb",
            &folder,
            commits,
            config.commit_mark,
        )?);
        let inner = Arc::new(Inner {
            folder: folder.clone(),
            db,
            config,
            sequencer: Mutex::new(Sequencer::default()),
            guards: Mutex::new(GuardCache::default()),
            mark,
            _forget: Forget(folder.clone()),
        });
        open.insert(folder, Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.inner.folder
    }

    /// The configuration the database was opened with.
    pub fn config(&self) -> RedbConfig {
        self.inner.config
    }

    fn file(&self) -> PathBuf {
        self.inner.folder.join(REDB_FILE)
    }

    fn sequencer(&self) -> Result<MutexGuard<'_, Sequencer>> {
        self.inner
            .sequencer
            .lock()
            .map_err(|_| Error::storage("commit", "commit lock poisoned by a panic"))
    }

    fn read<T>(
        &self,
        operation: &'static str,
        read: impl FnOnce(
            &redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
        ) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        guarded(&self.file(), operation, || {
            let txn = self.inner.db.begin_read()?;
            let table = txn.open_table(RECORDS)?;
            read(&table)
        })
    }
}

/// What fails inside a redb call: redb, or Rush's own code between its calls.
enum Failure {
    Engine(redb::Error),
    Rush(Error),
}

impl<E: Into<redb::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Engine(e.into())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Rush(e)
    }
}

/// The offset of the last entry of `log` (0 when empty).
fn log_end(table: &impl ReadableTable<&'static [u8], &'static [u8]>, log: &[u8]) -> Result<u64> {
    let end = crate::keys::prefix_end(log);
    let last = table
        .range::<&[u8]>(log..end.as_slice())
        .and_then(|mut range| range.next_back().transpose())
        .map_err(|e| Error::storage("read log end", e))?;
    last.map_or(Ok(0), |(key, block)| {
        block_end(log, key.value(), block.value())
    })
}

/// Runs a redb call, turning its errors and its panics into Rush's errors.
fn guarded<T>(
    file: &Path,
    operation: &'static str,
    call: impl FnOnce() -> std::result::Result<T, Failure>,
) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(Failure::Engine(e))) => Err(engine_error(file, operation, e)),
        Ok(Err(Failure::Rush(e))) => Err(e),
        Err(panic) => Err(Error::Corrupted {
            record: format!("redb's file {}", file.display()),
            reason: format!(
                "redb panicked during {operation}: {}",
                crate::error::panic_message(&*panic)
            ),
        }),
    }
}

/// A redb error, keeping its kind: I/O errors stay I/O errors (a full disk among them),
/// redb's damage report is [`Error::Corrupted`] naming the file.
fn engine_error(file: &Path, operation: &'static str, err: redb::Error) -> Error {
    match err {
        // What redb's file reader says of bytes that are not a redb file, or too few.
        redb::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Error::Corrupted {
                record: format!("redb's file {}", file.display()),
                reason: format!("redb cannot read it during {operation}: {io}"),
            }
        }
        redb::Error::Io(io) => Error::from_io(operation, &io),
        redb::Error::DatabaseAlreadyOpen => Error::DatabaseLocked {
            path: file.parent().unwrap_or(file).to_path_buf(),
        },
        redb::Error::Corrupted(reason) => Error::Corrupted {
            record: format!("redb's file {}", file.display()),
            reason: format!("redb found damage during {operation}: {reason}"),
        },
        other => Error::storage(operation, other),
    }
}

impl Backend for RedbManager {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if is_reserved(key) {
            return Ok(None);
        }
        self.read("read", |table| {
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })
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
        self.read("scan", |table| {
            let range = table.range::<&[u8]>(start..end)?;
            super::take_entries(range, limit, reverse, |item| {
                let (k, v) = item?;
                Ok::<_, Failure>((k.value().to_vec(), v.value().to_vec()))
            })
        })
    }

    fn visit_range(&self, start: &[u8], end: &[u8], visit: &mut super::Visitor<'_>) -> Result<()> {
        let end = clamp_end(end);
        if start >= end {
            return Ok(());
        }
        // One read transaction, one consistent view; a visitor's error ends the walk.
        let mut visited = Ok(());
        self.read("scan", |table| {
            for item in table.range::<&[u8]>(start..end)? {
                let (key, value) = item?;
                match visit(key.value(), value.value()) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        visited = Err(e);
                        break;
                    }
                }
            }
            Ok(())
        })?;
        visited
    }

    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        self.commit_with(batch, redb::Durability::None)
            .map(|(committed, _)| committed)
    }

    fn commit_durable(&self, batch: &WriteBatch) -> Result<super::Durable> {
        self.commit_with(batch, redb::Durability::Immediate)
    }

    fn flush(&self) -> Result<()> {
        super::confirm_now(self.flush_deferred()?)
    }

    fn flush_deferred(&self) -> Result<Option<super::Confirmation>> {
        let applied = self.inner.mark.applied();
        // A durable commit makes every earlier non-durable one durable with it.
        guarded(&self.file(), "flush", || {
            let txn = self.inner.db.begin_write()?;
            txn.commit()?;
            Ok(())
        })?;
        Ok(self.inner.mark.confirmation(applied))
    }

    fn size_on_disk(&self) -> Result<u64> {
        std::fs::metadata(self.file())
            .map(|m| m.len())
            .map_err(|e| Error::from_io("size on disk", &e))
    }

    fn copy_files_to(&self, dest: &Path) -> Result<u64> {
        super::engine_kind::copy_files(&self.inner.folder, dest)
    }

    fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last handle dropped on one thread while another opens the folder again: the
    /// open waits for the close instead of failing on redb's file lock.
    #[test]
    fn a_folder_reopens_while_its_last_handle_is_dropped_on_another_thread() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::from_io("tempdir", &e))?;
        for _ in 0..300 {
            let first = RedbManager::new(dir.path())?;
            let closing = std::thread::spawn(move || drop(first));
            let again = RedbManager::new(dir.path());
            let _ = closing.join();
            again?;
        }
        Ok(())
    }
}
