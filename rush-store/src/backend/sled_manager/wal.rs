//! The write-ahead log in front of sled ([`SledConfig::write_ahead_log`]): each commit is
//! appended to `rush-wal` and synced with one `fdatasync` before it touches sled, then
//! applied to sled with plain inserts (no `apply_batch`, whose log-buffer rolls cost sled
//! two writes per commit). sled's own flush runs only at a checkpoint, when the log has
//! grown past its limit: sled's flush and fsync, the commit mark, then the log starts a
//! new epoch from its beginning. An open replays every record of the current epoch, in
//! order, on top of what sled recovered: sled then holds exactly the commits the log
//! made durable, however much of them sled's own files kept.
//!
//! Layout (FORMAT.md, "Write-ahead log"), all integers big-endian, every record starting
//! at a multiple of 512 bytes:
//! - header, 512 bytes: `RUSHWAL\0`, version `u32` = 1, epoch `u64`, base `u64` (the
//!   commit counter sled held durably when the epoch began), CRC-32 of the 28 bytes
//!   before it, zeros;
//! - record: body length `u32`, CRC-32 `u32` (of the length, epoch, number and body),
//!   epoch `u64`, commit number `u64` (base + 1 for the epoch's first, then + 1 each),
//!   body, zeros to the next multiple of 512. Body: operation count `u32`, then per
//!   operation kind `u8` (0 put, 1 delete), key length `u32`, key, and for a put value
//!   length `u32`, value.
//!
//! A record that does not check out ends the log (a commit cut short by a crash was never
//! acknowledged), unless a valid record of the same epoch follows it: then an
//! acknowledged commit is damaged, and the open is [`Error::Corrupted`].
//!
//! [`SledConfig::write_ahead_log`]: super::SledConfig::write_ahead_log

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

mod format;

pub(crate) use format::LoggedOp;
use format::{
    Records, SECTOR, damaged, decode_body, decode_header, encode_header, encode_record, scan,
};

/// The log's name inside a database folder.
pub(crate) const WAL_FILE: &str = "rush-wal";

/// Why the log stops after a failed sync with records written before it.
const UNSYNCED_LOST: &str = "a sync of the log failed with commits written before it, which \
     may be lost; reopen the database";
/// After a record larger than this, the encoding buffer is let go instead of kept.
const KEEP_BUFFER: usize = 4 << 20;
/// The file grows by zeroed chunks of this size, so that most syncs write blocks the file
/// already has and change no metadata.
const GROW_BY: u64 = 1 << 20;

/// An open log: where the next record goes, and the epoch it belongs to.
#[derive(Debug)]
pub(crate) struct WriteAheadLog {
    path: PathBuf,
    /// `None` until [`WriteAheadLog::start`].
    file: Option<File>,
    /// 0 for a log that has no file yet.
    epoch: u64,
    /// Where the next record is written (a multiple of [`SECTOR`]).
    end: u64,
    /// The file's length as this log last extended it (0: not known yet).
    allocated: u64,
    /// The number the next record carries.
    next_number: u64,
    /// Reused for each record.
    buffer: Vec<u8>,
    /// The last record appended without a sync ([`WriteAheadLog::append`] with `sync`
    /// false), until a sync covers it.
    unsynced: Option<u64>,
    /// Why nothing more may be appended until the next open: a new epoch's header may
    /// have reached the disk unsynced (records of the old epoch written after it could
    /// be ignored by the next open), or a sync failed with records written before it
    /// (after a failed sync the system may drop the pages it could not write, so later
    /// syncs prove nothing about them).
    broken: Option<&'static str>,
    /// Tests: the next [`WriteAheadLog::sync`] fails as a full disk would.
    #[cfg(test)]
    fail_next_sync: bool,
}

/// What an open found: the records of the current epoch, in order, to apply on top of
/// sled (each its commit number and its writes, decoded from `bytes`).
pub(crate) struct Recovered {
    bytes: Vec<u8>,
    records: Records,
}

impl Recovered {
    /// The commit number of the last record (`None`: no record).
    pub(crate) fn last_number(&self) -> Option<u64> {
        self.records.last().map(|(number, _)| *number)
    }

    /// Calls `apply` with each record's number and writes, in log order.
    ///
    /// # Errors
    ///
    /// The first error of `apply`; [`Error::Corrupted`] for a body that does not decode
    /// (its checksum matched, so only a bug writes one).
    pub(crate) fn replay(
        &self,
        mut apply: impl FnMut(u64, &[LoggedOp<'_>]) -> Result<()>,
    ) -> Result<()> {
        let mut ops = Vec::new();
        for (number, range) in &self.records {
            let body = self
                .bytes
                .get(range.clone())
                .ok_or_else(|| damaged("a record", "past the file's end".into()))?;
            decode_body(body, &mut ops)?;
            apply(*number, &ops)?;
        }
        Ok(())
    }
}

impl WriteAheadLog {
    /// Opens the log in `folder`, creating it (epoch 1, starting after `sled_commits`)
    /// when there is none, and returns the records to replay. `sled_commits` is the
    /// counter sled holds: the epoch's base may not exceed it (sled would have lost
    /// commits a checkpoint made durable; the commit mark names that case first).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] for a damaged header, an unknown version, or a damaged record
    /// followed by valid ones; [`Error::Io`] or [`Error::DiskFull`] when the file cannot be
    /// read, created or synced.
    pub(crate) fn open(folder: &Path, sled_commits: u64) -> Result<(Self, Recovered)> {
        let path = folder.join(WAL_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::from_io("read the write-ahead log", &e)),
        };
        if bytes.iter().all(|&b| b == 0) {
            // New, or its creation was cut short before the header was synced: nothing
            // was ever logged in it. Nothing is written before `start`.
            let log = Self {
                path,
                file: None,
                epoch: 0,
                end: SECTOR,
                allocated: 0,
                next_number: sled_commits.saturating_add(1),
                buffer: Vec::new(),
                unsynced: None,
                broken: None,
                #[cfg(test)]
                fail_next_sync: false,
            };
            let recovered = Recovered {
                bytes: Vec::new(),
                records: Vec::new(),
            };
            return Ok((log, recovered));
        }
        let (epoch, base) =
            decode_header(&bytes).map_err(|reason| damaged("its header", reason))?;
        if base > sled_commits {
            return Err(Error::Corrupted {
                record: format!("sled's files in {}", folder.display()),
                reason: format!(
                    "they hold {sled_commits} commits, but the write-ahead log's last \
                     checkpoint made {base} durable: sled lost commits, probably to damage; \
                     nothing was changed"
                ),
            });
        }
        let (records, end) = scan(&bytes, epoch, base)?;
        let next_number = records
            .last()
            .map_or(Some(base), |(number, _)| Some(*number))
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| {
                Error::storage("open the write-ahead log", "commit counter exhausted")
            })?;
        let log = Self {
            path,
            file: None,
            epoch,
            end,
            allocated: bytes.len() as u64,
            next_number,
            buffer: Vec::new(),
            unsynced: None,
            broken: None,
            #[cfg(test)]
            fail_next_sync: false,
        };
        Ok((log, Recovered { bytes, records }))
    }

    /// Opens the file for writing; a log that had none gets one (epoch 1, after the
    /// commits before the next one), synced with its folder. Call once the open is
    /// known to go on: until then nothing is written.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::DiskFull`] when the file cannot be opened, created or
    /// synced.
    pub(crate) fn start(&mut self) -> Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| Error::from_io("open the write-ahead log", &e))?;
        self.file = Some(file);
        if self.epoch == 0 {
            self.start_epoch(1, self.next_number.saturating_sub(1))?;
            if let Some(folder) = self.path.parent() {
                sync_folder(folder)?;
            }
        }
        Ok(())
    }

    fn file(&self) -> Result<&File> {
        self.file
            .as_ref()
            .ok_or_else(|| Error::storage("write the write-ahead log", "the log is not started"))
    }

    /// The number of the last record, or the epoch's base when it has none: the commits
    /// sled holds once the log is replayed.
    pub(crate) fn last_number(&self) -> u64 {
        self.next_number.saturating_sub(1)
    }

    /// Bytes of records in the current epoch.
    pub(crate) fn len(&self) -> u64 {
        self.end.saturating_sub(SECTOR)
    }

    /// Appends the commit numbered `number` with its writes, and with `sync` syncs the
    /// log: once this returns, the commit (and every record before it) survives a
    /// crash. Without `sync` the record is in the system's page cache only, so it
    /// survives a crash of the process but not of the system, until
    /// [`WriteAheadLog::sync`] or the next synced append. A failure leaves the end where
    /// it was, so the next append overwrites whatever part of this one reached the file;
    /// a failed sync with unsynced records before this one stops the log (see
    /// `broken`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `number` is not the next one or the record is
    /// larger than 4 GiB; [`Error::Io`] or [`Error::DiskFull`] when it cannot be written
    /// or synced; [`Error::Storage`] when the log is stopped.
    pub(crate) fn append(&mut self, number: u64, ops: &[LoggedOp<'_>], sync: bool) -> Result<()> {
        if let Some(reason) = self.broken {
            return Err(Error::storage("write the write-ahead log", reason));
        }
        if number != self.next_number {
            return Err(Error::InvalidArgument(format!(
                "write-ahead log: commit {number} follows {}",
                self.next_number.saturating_sub(1)
            )));
        }
        encode_record(&mut self.buffer, self.epoch, number, ops)?;
        let needed = self.end.saturating_add(self.buffer.len() as u64);
        if needed > self.allocated {
            self.grow_to(needed)?;
        }
        let file = self.file()?;
        file.write_all_at(&self.buffer, self.end)
            .map_err(|e| Error::from_io("write the write-ahead log", &e))?;
        if sync {
            if let Err(error) = self.sync_file() {
                if self.unsynced.is_some() {
                    self.broken = Some(UNSYNCED_LOST);
                }
                return Err(error);
            }
            self.unsynced = None;
        } else {
            self.unsynced = Some(number);
        }
        self.end = self.end.saturating_add(self.buffer.len() as u64);
        self.next_number = number.saturating_add(1);
        if self.buffer.capacity() > KEEP_BUFFER {
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Syncs the records appended without a sync, if any: returns the number of the last
    /// one, now durable. A failure stops the log (see `broken`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::DiskFull`] when the sync fails; [`Error::Storage`] when
    /// the log is stopped.
    pub(crate) fn sync(&mut self) -> Result<Option<u64>> {
        let Some(last) = self.unsynced else {
            return Ok(None);
        };
        if let Some(reason) = self.broken {
            return Err(Error::storage("sync the write-ahead log", reason));
        }
        if let Err(error) = self.sync_file() {
            self.broken = Some(UNSYNCED_LOST);
            return Err(error);
        }
        self.unsynced = None;
        Ok(Some(last))
    }

    /// `fdatasync` of the file (tests: fails once after `fail_next_sync`, as a full disk
    /// would).
    fn sync_file(&mut self) -> Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_sync) {
            let full = std::io::Error::from_raw_os_error(28);
            return Err(Error::from_io("sync the write-ahead log", &full));
        }
        self.file()?
            .sync_data()
            .map_err(|e| Error::from_io("sync the write-ahead log", &e))
    }

    /// Starts a new epoch after a checkpoint made the first `base` commits durable in
    /// sled: the header is rewritten and synced, and every older record stops counting.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::DiskFull`] when the header cannot be written or synced;
    /// [`Error::Storage`] when the epoch counter is exhausted.
    pub(crate) fn checkpointed(&mut self, base: u64) -> Result<()> {
        let epoch = self
            .epoch
            .checked_add(1)
            .ok_or_else(|| Error::storage("checkpoint", "write-ahead log epoch exhausted"))?;
        self.start_epoch(epoch, base)
    }

    /// Extends the file with zeros to the next multiple of [`GROW_BY`] at or past
    /// `needed` (synced with the record that needs it): zeros end the log as a torn
    /// record does.
    fn grow_to(&mut self, needed: u64) -> Result<()> {
        let target = needed.div_ceil(GROW_BY).saturating_mul(GROW_BY);
        let file = self.file()?;
        let mut at = self.allocated.max(SECTOR);
        let zeros = vec![0u8; 64 * 1024];
        while at < target {
            let len = usize::try_from((target - at).min(zeros.len() as u64)).unwrap_or(zeros.len());
            let chunk = zeros.get(..len).unwrap_or_default();
            file.write_all_at(chunk, at)
                .map_err(|e| Error::from_io("extend the write-ahead log", &e))?;
            at = at.saturating_add(len as u64);
        }
        self.allocated = target;
        Ok(())
    }

    fn start_epoch(&mut self, epoch: u64, base: u64) -> Result<()> {
        let file = self.file()?;
        let written = file
            .write_all_at(&encode_header(epoch, base), 0)
            .map_err(|e| Error::from_io("write the write-ahead log's header", &e))
            .and_then(|()| {
                file.sync_data()
                    .map_err(|e| Error::from_io("sync the write-ahead log", &e))
            });
        if let Err(error) = written {
            // The new header may be on disk or not: neither epoch can be appended to.
            self.broken =
                Some("a checkpoint could not sync the log's new header; reopen the database");
            return Err(error);
        }
        // The checkpoint made sled's files durable: the old epoch's records, synced or
        // not, are no longer needed.
        self.unsynced = None;
        self.epoch = epoch;
        self.end = SECTOR;
        self.next_number = base.saturating_add(1);
        Ok(())
    }

    /// Removes the log after a checkpoint, for a database opened without it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when it cannot be removed or the folder synced.
    pub(crate) fn remove(self) -> Result<()> {
        let folder = self.path.parent().map(Path::to_path_buf);
        drop(self.file);
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::from_io("remove the write-ahead log", &e)),
        }
        match folder {
            Some(folder) => sync_folder(&folder),
            None => Ok(()),
        }
    }
}

fn sync_folder(folder: &Path) -> Result<()> {
    File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| Error::from_io("sync the database folder", &e))
}

#[cfg(test)]
mod tests;
