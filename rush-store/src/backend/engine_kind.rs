//! Which engine a database folder holds, told by its files, and opening one for tools:
//! the real folder for maintenance, or a copy for inspection, so that a read-only look
//! never lets the engine rewrite what it looks at.

use super::Backend;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// [`Error::NotADatabase`] unless `folder` exists and is a folder: the first check of every
/// open that must not create a database.
pub(crate) fn existing_folder(folder: &Path) -> Result<()> {
    let reason = if !folder.exists() {
        "the folder does not exist"
    } else if !folder.is_dir() {
        "it is not a folder"
    } else {
        return Ok(());
    };
    Err(Error::NotADatabase {
        path: folder.to_path_buf(),
        reason: reason.to_owned(),
    })
}

/// The engines a database folder can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// sled 0.34.7: `conf` and `db` (and `blobs/`).
    Sled,
    /// redb 4.x: `rush.redb` (feature `redb`).
    Redb,
}

impl EngineKind {
    /// The engine whose files `folder` holds.
    ///
    /// # Errors
    ///
    /// [`Error::NotADatabase`] when the folder is missing, is not a folder, or holds
    /// neither engine's files, or both.
    pub fn detect(folder: &Path) -> Result<Self> {
        let not_a_database = |reason: &str| Error::NotADatabase {
            path: folder.to_path_buf(),
            reason: reason.to_owned(),
        };
        existing_folder(folder)?;
        let sled = folder.join("conf").is_file() && folder.join("db").is_file();
        let redb = folder.join("rush.redb").is_file();
        match (sled, redb) {
            (true, false) => Ok(Self::Sled),
            (false, true) => Ok(Self::Redb),
            (true, true) => Err(not_a_database(
                "the folder holds both sled's and redb's files: which is the database is unclear",
            )),
            (false, false) => Err(not_a_database(
                "the folder holds no Rush database (no sled `conf` and `db`, no `rush.redb`)",
            )),
        }
    }

    /// The engine's name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Redb => "redb",
        }
    }

    /// The engine named `name` (`sled` or `redb`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "sled" => Ok(Self::Sled),
            "redb" => Ok(Self::Redb),
            other => Err(Error::InvalidArgument(format!(
                "unknown engine {other:?}: use sled or redb"
            ))),
        }
    }

    /// Opens (or creates) this engine's database in `folder`, with a page cache of
    /// `cache_bytes`.
    ///
    /// # Errors
    ///
    /// What [`SledManager::with_config`](crate::SledManager::with_config) or
    /// `RedbManager::with_config` returns ([`Error::DatabaseLocked`] for a folder another
    /// process uses, [`Error::Corrupted`] for damaged files, [`Error::Io`]...);
    /// [`Error::InvalidArgument`] for redb in a build without the `redb` feature.
    #[cfg_attr(not(all(feature = "sled", feature = "redb")), allow(unused_variables))]
    pub fn open(self, folder: &Path, cache_bytes: u64) -> Result<Arc<dyn Backend>> {
        match self {
            #[cfg(feature = "sled")]
            Self::Sled => {
                let config = super::SledConfig {
                    cache_capacity: cache_bytes,
                    ..super::SledConfig::default()
                };
                Ok(Arc::new(super::SledManager::with_config(folder, config)?))
            }
            #[cfg(not(feature = "sled"))]
            Self::Sled => Err(Error::InvalidArgument(
                "this build has no sled engine (rush-store feature `sled`)".into(),
            )),
            #[cfg(feature = "redb")]
            Self::Redb => {
                let config = super::RedbConfig {
                    cache_capacity: usize::try_from(cache_bytes).unwrap_or(usize::MAX),
                    ..super::RedbConfig::default()
                };
                Ok(Arc::new(super::RedbManager::with_config(folder, config)?))
            }
            #[cfg(not(feature = "redb"))]
            Self::Redb => Err(Error::InvalidArgument(
                "this build has no redb engine (rush-store feature `redb`)".into(),
            )),
        }
    }

    /// Whether a process (this one or another) has the database in `folder` open.
    pub fn in_use(self, folder: &Path) -> bool {
        let file = match self {
            Self::Sled => folder.join("db"),
            Self::Redb => folder.join("rush.redb"),
        };
        match std::fs::File::open(file) {
            Ok(file) => matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }
}

/// Opens the existing database in `folder`, whichever engine it is, never creating one.
///
/// # Errors
///
/// [`Error::NotADatabase`] as [`EngineKind::detect`] says; [`Error::DatabaseLocked`] when a
/// process has the database open; otherwise what [`EngineKind::open`] returns.
pub fn open_existing(folder: &Path, cache_bytes: u64) -> Result<(EngineKind, Arc<dyn Backend>)> {
    let kind = EngineKind::detect(folder)?;
    if kind.in_use(folder) {
        return Err(Error::DatabaseLocked {
            path: folder.to_path_buf(),
        });
    }
    Ok((kind, kind.open(folder, cache_bytes)?))
}

/// A copy of a database, opened: inspection works on it, so that the engine cannot
/// rewrite the original (sled rewrites its files on every open; any engine may repair).
#[derive(Debug)]
pub struct Copy {
    /// The engine of the original.
    pub kind: EngineKind,
    /// The copy, opened.
    pub engine: Arc<dyn Backend>,
    /// Bytes copied.
    pub bytes: u64,
    /// Where the copy is (removed when the value is dropped).
    pub folder: PathBuf,
    _dir: TempDirGuard,
}

/// Removes a folder when dropped.
#[derive(Debug)]
struct TempDirGuard(PathBuf);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the database in `folder` into a new folder under `scratch` and opens the
/// copy.
///
/// # Errors
///
/// [`Error::NotADatabase`] as [`EngineKind::detect`] says; [`Error::DatabaseLocked`] when a
/// process has the database open (files copied while an engine writes them are not a
/// consistent image); [`Error::Io`] or [`Error::DiskFull`] while copying
/// ([`copy_files`]); otherwise what [`EngineKind::open`] returns for the copy.
pub fn open_copy(folder: &Path, scratch: &Path, cache_bytes: u64) -> Result<Copy> {
    let kind = EngineKind::detect(folder)?;
    if kind.in_use(folder) {
        return Err(Error::DatabaseLocked {
            path: folder.to_path_buf(),
        });
    }
    let copy = scratch.join(format!("rush-inspect-{}", std::process::id()));
    let guard = TempDirGuard(copy.clone());
    let bytes = copy_files(folder, &copy)?;
    let engine = kind.open(&copy, cache_bytes)?;
    Ok(Copy {
        kind,
        engine,
        bytes,
        folder: copy,
        _dir: guard,
    })
}

/// Copies every file under `from` to `to` (created), keeping the tree; returns the bytes.
///
/// # Errors
///
/// [`Error::Io`] or [`Error::DiskFull`] when a folder cannot be created or listed, or a
/// file copied.
pub fn copy_files(from: &Path, to: &Path) -> Result<u64> {
    let io = |what: &'static str| move |e: std::io::Error| Error::from_io(what, &e);
    std::fs::create_dir_all(to).map_err(io("create the copy's folder"))?;
    let mut bytes = 0u64;
    for entry in std::fs::read_dir(from).map_err(io("list the database folder"))? {
        let entry = entry.map_err(io("list the database folder"))?;
        let target = to.join(entry.file_name());
        if entry
            .file_type()
            .map_err(io("list the database folder"))?
            .is_dir()
        {
            bytes = bytes.saturating_add(copy_files(&entry.path(), &target)?);
        } else {
            let copied =
                std::fs::copy(entry.path(), &target).map_err(io("copy a database file"))?;
            bytes = bytes.saturating_add(copied);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_an_engine_holds_open_is_in_use_until_it_closes() -> Result<()> {
        let io = |e: std::io::Error| Error::from_io("tempdir", &e);
        for kind in [EngineKind::Sled, EngineKind::Redb] {
            let dir = tempfile::tempdir().map_err(io)?;
            let engine = kind.open(dir.path(), 1024 * 1024)?;
            assert_eq!(EngineKind::detect(dir.path())?, kind);
            assert!(kind.in_use(dir.path()), "{kind:?} open");
            drop(engine);
            assert!(!kind.in_use(dir.path()), "{kind:?} closed");
        }
        Ok(())
    }
}
