//! Opening a sled folder: one database per folder in a process (a registry of weak
//! handles), the folder's lock told apart before sled is asked, damage that makes sled
//! panic reported as damage, the write-ahead log replayed and the commit mark checked
//! before the database is handed out.

use super::{CommitState, Inner, SledConfig, SledManager, engine_error, write_ahead};
use crate::backend::commit_mark::{COUNTER_KEY, CommitMark};
use crate::backend::sled_lock::{CLOSE_WAIT, LockRelease, is_locked};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

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
        let registry = || {
            open_databases()
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        let mut open = registry();
        let waiting_since = Instant::now();
        loop {
            match open.get(&path).map(Weak::upgrade) {
                Some(Some(inner)) => return Ok(Self { inner }),
                // Closing in this process right now (its last handle was dropped on
                // another thread): wait until that close is over, that is until it has
                // forgotten the folder. Waiting for the lock alone is not enough: the close
                // probes the lock until it is free, and a probe holds it for an instant,
                // which this open would take for another user of the folder.
                Some(None) if waiting_since.elapsed() < CLOSE_WAIT => {
                    drop(open);
                    std::thread::sleep(Duration::from_millis(1));
                    open = registry();
                }
                Some(None) | None => break,
            }
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
        crate::backend::engine_kind::existing_folder(path)?;
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

fn open_databases() -> &'static Mutex<HashMap<PathBuf, Weak<Inner>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = OnceLock::new();
    OPEN.get_or_init(Mutex::default)
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
    crate::backend::sled_files::check_db_file(path)?;
    crate::backend::commit_mark::check_before_open(path)?;
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

/// The commit counter sled holds (0 for a database that has none yet).
pub(super) fn stored_commits(db: &sled::Db) -> Result<u64> {
    let stored = db
        .get(COUNTER_KEY)
        .map_err(|e| engine_error("read the commit counter", e))?;
    crate::backend::commit_mark::decode_counter(stored.as_deref())
}
