//! The commit mark: an independent, durable record of how many commits an engine had made
//! durable, kept beside the engine's own files and checked before its view is trusted.
//!
//! An engine that meets damage in its own files may recover to an older state without a
//! word (sled 0.34.7 stops replaying its log at the first bad message and drops the rest;
//! redb falls back to the previous commit when the newest one fails its checksum). The
//! events of the lost commits were acknowledged. So every commit also writes a counter
//! into the engine (in the same atomic batch), and every flush, once the engine has made
//! its writes durable, writes the counter it reached to `rush-mark` before anything is
//! acknowledged, and syncs it after (see [`CommitMark::confirmation`]). On open,
//! an engine holding fewer commits than the mark says were durable has rolled back: that
//! is [`Error::Corrupted`], naming both numbers, and nothing is written.
//!
//! `rush-mark` is 24 bytes (FORMAT.md): `RUSHMARK`, version `u32` = 1, commits `u64`, and
//! a CRC-32 of the 20 bytes before it, all big-endian. It is written in place, so its size
//! never changes and a data sync is enough.

use super::{Confirmation, Settle};
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Keys an engine keeps for itself start with these bytes: they are never returned by a
/// read or a scan, and a batch that writes one is refused. Rush's own keys start with a
/// kind byte below `0x80`.
pub const RESERVED_PREFIX: [u8; 2] = [0xFF, 0xFF];

/// Where an engine that keeps its counter among its keys stores it.
pub const COUNTER_KEY: &[u8] = b"\xFF\xFFrush/commits";

/// The mark file's name inside a database folder.
pub const MARK_FILE: &str = "rush-mark";

const MAGIC: &[u8; 8] = b"RUSHMARK";
const VERSION: u32 = 1;
/// The version a mark is written with while sled's write-ahead log holds commits: builds
/// that do not know the log refuse the folder (`unknown version 2`) instead of opening
/// sled without them.
const VERSION_LOGGED: u32 = 2;
const LEN: usize = 24;

/// Whether `key` belongs to the engine (see [`RESERVED_PREFIX`]).
pub fn is_reserved(key: &[u8]) -> bool {
    key.starts_with(&RESERVED_PREFIX)
}

/// `end` clamped so that a scan stops before the reserved keys.
pub fn clamp_end(end: &[u8]) -> &[u8] {
    if end > &RESERVED_PREFIX[..] {
        &RESERVED_PREFIX
    } else {
        end
    }
}

/// The open mark file, whether its last write still waits for its sync, and the error of
/// a sync that failed after its answers were sent (reported by the next write).
#[derive(Debug)]
struct MarkFile {
    file: File,
    unsynced: bool,
    failed: Option<Error>,
    /// Tests: the next sync fails as a full disk would.
    #[cfg(test)]
    fail_next_sync: bool,
}

/// A folder's mark and the engine's commit counter, as one open database sees them.
#[derive(Debug)]
pub struct CommitMark {
    /// `None` when the database is opened without syncing (then the mark is not kept).
    file: Option<Mutex<MarkFile>>,
    /// Commits this database has made (the value the next commit writes, minus one).
    committed: AtomicU64,
    /// The value `rush-mark` holds.
    marked: AtomicU64,
    /// The version it is written with ([`CommitMark::set_logged`]).
    version: AtomicU32,
}

impl CommitMark {
    /// Checks the folder's mark against `engine_commits`, the counter the engine holds,
    /// and opens the mark for writing. A folder without a mark gets one, unless the engine
    /// has commits the mark should have counted (the mark was deleted).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] when the engine holds fewer commits than the mark says were
    /// durable, when the mark is missing beside an engine that has commits, or when the
    /// mark itself is damaged; [`Error::Io`] or [`Error::DiskFull`] when the mark cannot be
    /// read, created or synced.
    pub fn open(engine: &str, folder: &Path, engine_commits: u64, sync: bool) -> Result<Self> {
        let path = folder.join(MARK_FILE);
        let (marked, version) = match read_versioned(&path)? {
            Some(found) => found,
            None if engine_commits == 0 || !sync => (0, VERSION),
            None => {
                return Err(Error::Corrupted {
                    record: format!("the commit mark {}", path.display()),
                    reason: format!(
                        "the file is missing or empty, but the engine holds {engine_commits} \
                         commits: whether acknowledged commits were lost cannot be checked"
                    ),
                });
            }
        };
        if engine_commits < marked {
            return Err(Error::Corrupted {
                record: format!("{engine}'s files in {}", folder.display()),
                reason: format!(
                    "they hold {engine_commits} commits, but {marked} were durable and \
                     acknowledged ({MARK_FILE}): the engine lost the last {} commits, \
                     probably to damage; nothing was changed",
                    marked - engine_commits
                ),
            });
        }
        let file = if sync {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::from_io("open the commit mark", &e))?;
            let created = file
                .metadata()
                .map_err(|e| Error::from_io("read the commit mark", &e))?
                .len()
                == 0;
            if created {
                write_at_start(&file, marked, version)?;
                sync_mark(&file)?;
                File::open(folder)
                    .and_then(|dir| dir.sync_all())
                    .map_err(|e| Error::from_io("sync the database folder", &e))?;
            }
            Some(Mutex::new(MarkFile {
                file,
                unsynced: false,
                failed: None,
                #[cfg(test)]
                fail_next_sync: false,
            }))
        } else {
            None
        };
        Ok(Self {
            file,
            committed: AtomicU64::new(engine_commits),
            marked: AtomicU64::new(marked),
            version: AtomicU32::new(version),
        })
    }

    /// The counter the next commit writes. Call under the engine's commit lock, and
    /// [`CommitMark::committed`] once that commit has applied.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the counter is at `u64::MAX`.
    pub fn next(&self) -> Result<u64> {
        self.committed
            .load(Ordering::Acquire)
            .checked_add(1)
            .ok_or_else(|| Error::storage("commit", "commit counter exhausted"))
    }

    /// Records that the commit numbered `n` applied.
    pub fn committed(&self, n: u64) {
        self.committed.store(n, Ordering::Release);
    }

    /// Commits applied so far: read before the engine's flush, passed to
    /// [`CommitMark::durable`] after it.
    pub fn applied(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// The step that records `applied` (read before the engine's flush) once the engine's
    /// flush returned: it writes the mark, and leaves its sync as a [`Settle`] for after
    /// the answers. `None` when there is nothing to record (no mark kept, or nothing new
    /// since the last one).
    ///
    /// Why the sync may follow the answers: the mark only ever holds counts the engine
    /// had already made durable, so a mark that lags is never a false alarm, only a check
    /// that covers fewer commits. The write itself is in the page cache before anything
    /// is acknowledged, so a process crash (the common case) keeps it; only an operating
    /// system crash or a power loss within the sync's window (one group) can leave the
    /// previous count, and then a rollback of exactly that group would go unnoticed.
    pub fn confirmation(self: &Arc<Self>, applied: u64) -> Option<Confirmation> {
        if self.file.is_none() || applied <= self.marked.load(Ordering::Acquire) {
            return None;
        }
        let mark = Arc::clone(self);
        Some(Box::new(move || {
            mark.record(applied)?;
            let settle: Settle = Box::new(move || mark.settle());
            Ok(Some(settle))
        }))
    }

    /// Records durably that the first `commits` commits are durable in the engine: the
    /// mark's write and its sync.
    ///
    /// # Errors
    ///
    /// As [`CommitMark::record`] and [`CommitMark::settle`].
    pub fn durable(&self, commits: u64) -> Result<()> {
        self.record(commits)?;
        self.settle()
    }

    /// Writes `commits` into the mark, without syncing it (see
    /// [`CommitMark::confirmation`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::DiskFull`] when the mark cannot be written, or when the
    /// sync of an earlier write failed after its answers were sent; [`Error::Storage`]
    /// when its lock was poisoned by a panic.
    pub fn record(&self, commits: u64) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut file = file
            .lock()
            .map_err(|_| Error::storage("write the commit mark", "lock poisoned"))?;
        if let Some(error) = file.failed.take() {
            return Err(error);
        }
        if commits <= self.marked.load(Ordering::Acquire) {
            return Ok(());
        }
        write_at_start(&file.file, commits, self.version.load(Ordering::Acquire))?;
        file.unsynced = true;
        self.marked.store(commits, Ordering::Release);
        Ok(())
    }

    /// Marks the folder as holding a write-ahead log (`true`: version 2, which builds that
    /// do not know the log refuse) or not (`false`: version 1), rewriting and syncing the
    /// mark now when that changes it. sled calls it once its log is open, before any
    /// commit is logged, and after it removed the log.
    ///
    /// # Errors
    ///
    /// As [`CommitMark::record`] and [`CommitMark::settle`].
    pub fn set_logged(&self, logged: bool) -> Result<()> {
        let version = if logged { VERSION_LOGGED } else { VERSION };
        if self.version.swap(version, Ordering::AcqRel) == version {
            return Ok(());
        }
        let Some(file) = &self.file else {
            return Ok(());
        };
        {
            let mut file = file
                .lock()
                .map_err(|_| Error::storage("write the commit mark", "lock poisoned"))?;
            write_at_start(&file.file, self.marked.load(Ordering::Acquire), version)?;
            file.unsynced = true;
        }
        self.settle()
    }

    /// Syncs the mark's last write, if it is not synced yet. A failure is also kept for
    /// the next [`CommitMark::record`], which returns it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::DiskFull`] when the sync fails; [`Error::Storage`] when
    /// its lock was poisoned by a panic.
    pub fn settle(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut file = file
            .lock()
            .map_err(|_| Error::storage("sync the commit mark", "lock poisoned"))?;
        if !file.unsynced {
            return Ok(());
        }
        #[cfg(test)]
        let synced = if std::mem::take(&mut file.fail_next_sync) {
            Err(Error::from_io(
                "sync the commit mark",
                &std::io::Error::from_raw_os_error(28),
            ))
        } else {
            sync_mark(&file.file)
        };
        #[cfg(not(test))]
        let synced = sync_mark(&file.file);
        match synced {
            Ok(()) => {
                file.unsynced = false;
                Ok(())
            }
            Err(error) => {
                file.failed = Some(error.clone());
                Err(error)
            }
        }
    }
}

/// The counter an engine stored at [`COUNTER_KEY`] (0 when absent).
///
/// # Errors
///
/// [`Error::Corrupted`] when the stored value is not 8 bytes.
pub fn decode_counter(stored: Option<&[u8]>) -> Result<u64> {
    match stored {
        None => Ok(0),
        Some(bytes) => <[u8; 8]>::try_from(bytes)
            .map(u64::from_be_bytes)
            .map_err(|_| Error::Corrupted {
                record: "the engine's commit counter".into(),
                reason: format!("{} bytes instead of 8", bytes.len()),
            }),
    }
}

/// Refuses a batch that writes, deletes or appends under the reserved keys.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when a write, delete or append's key starts with
/// [`RESERVED_PREFIX`].
pub fn refuse_reserved(batch: &super::WriteBatch) -> Result<()> {
    let reserved = batch
        .ops
        .iter()
        .map(|op| match op {
            super::WriteOp::Put { key, .. } | super::WriteOp::Delete { key } => key,
        })
        .chain(batch.appends.iter().map(|a| &a.log))
        .any(|key| is_reserved(key));
    if reserved {
        return Err(Error::InvalidArgument(
            "keys starting with 0xFF 0xFF belong to the engine".into(),
        ));
    }
    Ok(())
}

/// Reads and checks the folder's mark before the engine opens its files, so that a
/// damaged mark is reported while every file is still as it was.
///
/// # Errors
///
/// [`Error::Corrupted`] when the mark is damaged (wrong size, checksum, magic or version);
/// [`Error::Io`] when it exists but cannot be read.
pub fn check_before_open(folder: &Path) -> Result<()> {
    read(&folder.join(MARK_FILE)).map(drop)
}

/// The commits a mark file records; `None` when there is no file, or an empty one (its
/// creation, at the first open, was cut short: [`CommitMark::open`] then refuses it only
/// beside an engine that has commits, as a missing one).
pub fn read(path: &Path) -> Result<Option<u64>> {
    read_versioned(path).map(|found| found.map(|(commits, _)| commits))
}

/// [`read`], with the version the mark was written with.
fn read_versioned(path: &Path) -> Result<Option<(u64, u32)>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => return Ok(None),
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::from_io("read the commit mark", &e)),
    };
    decode(&bytes).map(Some).map_err(|reason| Error::Corrupted {
        record: format!("the commit mark {}", path.display()),
        reason,
    })
}

fn encode(commits: u64, version: u32) -> [u8; LEN] {
    let mut bytes = [0u8; LEN];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..12].copy_from_slice(&version.to_be_bytes());
    bytes[12..20].copy_from_slice(&commits.to_be_bytes());
    let crc = crc32fast::hash(&bytes[..20]);
    bytes[20..].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> std::result::Result<(u64, u32), String> {
    let bytes: &[u8; LEN] = bytes
        .try_into()
        .map_err(|_| format!("{} bytes instead of {LEN}", bytes.len()))?;
    let (body, crc) = bytes.split_at(20);
    let crc = u32::from_be_bytes(crc.try_into().map_err(|_| "no checksum".to_owned())?);
    if crc32fast::hash(body) != crc {
        return Err("its checksum does not match (damaged)".into());
    }
    let (magic, rest) = body.split_at(8);
    if magic != MAGIC {
        return Err("it does not start with RUSHMARK".into());
    }
    let (version, commits) = rest.split_at(4);
    let version = u32::from_be_bytes(version.try_into().map_err(|_| "short".to_owned())?);
    if version != VERSION && version != VERSION_LOGGED {
        return Err(format!("unknown version {version}"));
    }
    let commits = u64::from_be_bytes(commits.try_into().map_err(|_| "short".to_owned())?);
    Ok((commits, version))
}

fn write_at_start(file: &File, commits: u64, version: u32) -> Result<()> {
    file.write_all_at(&encode(commits, version), 0)
        .map_err(|e| Error::from_io("write the commit mark", &e))
}

fn sync_mark(file: &File) -> Result<()> {
    file.sync_data()
        .map_err(|e| Error::from_io("sync the commit mark", &e))
}

#[cfg(test)]
mod tests;
