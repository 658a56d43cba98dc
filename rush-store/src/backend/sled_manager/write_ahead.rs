//! The sled engine with its write-ahead log ([`SledConfig::write_ahead_log`], format in
//! `wal`): opening replays the log, a durable commit is logged and synced before sled
//! sees it, and a checkpoint makes sled's own files durable so that the log can start
//! over.
//!
//! sled applies a durable commit key by key here (its batch rolls its log buffer twice
//! per call, two writes to disk), so readers are kept out while a commit applies: every
//! read of the engine holds `Inner::applying` for reading, a commit holds it for
//! writing, and a read never sees half a commit, as it would not with sled's batch.
//!
//! A commit without durability (`Periodic`) is logged without a sync and applied as one
//! sled batch: the next flush syncs its record. A crash of the process keeps the record
//! (it is in the system's page cache); a power loss may keep sled's batch and lose the
//! record, and [`finish_open`] then finds sled ahead of the log.
//!
//! [`SledConfig::write_ahead_log`]: super::SledConfig::write_ahead_log

use super::wal::{LoggedOp, Recovered, WAL_FILE, WriteAheadLog};
use super::{
    COUNTER_KEY, CommitState, Inner, SledConfig, SledManager, check_guards, engine_error,
    highest_offset,
};
use crate::backend::{Durable, Visitor, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLockReadGuard};
use tracing::warn;

/// The open log, and the failure that stopped it.
#[derive(Debug)]
pub(super) struct Logged {
    log: WriteAheadLog,
    /// Set when a logged commit could not be applied to sled: sled then lacks a durable
    /// commit until the next open replays it, so nothing more may be written.
    failed: Option<Error>,
}

/// A log opened and read, waiting for the commit mark's check (see [`finish_open`]).
pub(super) struct Opened {
    log: WriteAheadLog,
    recovered: Recovered,
    /// The commits sled held before the replay.
    sled_commits: u64,
}

impl Opened {
    /// The commits sled will hold once the log is replayed: the last one logged, or
    /// `sled_commits` when sled is ahead of the log (see [`finish_open`]).
    pub(super) fn commits(opened: Option<&Self>, sled_commits: u64) -> u64 {
        opened.map_or(sled_commits, |o| o.log.last_number().max(sled_commits))
    }
}

/// Opens and reads the folder's log if it has one or `config` asks for one (sled holds
/// `sled_commits`). Nothing is replayed yet: the commit mark is checked against
/// [`Opened::commits`] first (a lost log, or a log cut short, holds fewer commits than
/// the mark counted), so that a refused open changes nothing; then [`finish_open`]
/// replays and checkpoints.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when the log is asked for without
/// [`SledConfig::sync_to_disk`](super::SledConfig::sync_to_disk); what
/// [`WriteAheadLog::open`] returns.
pub(super) fn open(
    folder: &Path,
    config: &SledConfig,
    sled_commits: u64,
) -> Result<Option<Opened>> {
    if config.write_ahead_log && !config.sync_to_disk {
        return Err(Error::InvalidArgument(
            "SledConfig: write_ahead_log (on by default) needs sync_to_disk; \
             set write_ahead_log: false to run without fsyncs"
                .into(),
        ));
    }
    if !config.write_ahead_log && !folder.join(WAL_FILE).exists() {
        return Ok(None);
    }
    let (log, recovered) = WriteAheadLog::open(folder, sled_commits)?;
    Ok(Some(Opened {
        log,
        recovered,
        sled_commits,
    }))
}

/// Replays what [`open`] read into sled and checkpoints it (so that sled's files hold it
/// before anything new is logged), then keeps the log, or removes it when the database
/// is opened without one.
///
/// sled may hold more commits than the log: commits without durability (`Periodic`)
/// are applied as one sled batch each before their records are synced, and a power loss
/// can keep the batches and lose the records. sled recovers a prefix of its own writes
/// and each batch whole, so it then holds every commit up to its counter, and nothing
/// is replayed: the log's records are all older, and replaying them would take back
/// later writes. (A durable commit's record is synced before sled sees it, and its sync
/// covers every record before it, so sled is never ahead of the log by a commit applied
/// key by key.)
///
/// # Errors
///
/// sled's failures while replaying; engine failures of the mark's version, the
/// checkpoint, or the log's removal.
pub(super) fn finish_open(inner: &Inner, opened: Option<Opened>) -> Result<Option<Mutex<Logged>>> {
    let Some(Opened {
        mut log,
        recovered,
        sled_commits,
    }) = opened
    else {
        return Ok(None);
    };
    if inner.config.write_ahead_log {
        // Before anything is logged: builds that do not know the log refuse the folder.
        inner.mark.set_logged(true)?;
    }
    log.start()?;
    if sled_commits > log.last_number() {
        tracing::info!(
            folder = %inner.path.display(),
            sled_commits,
            logged = log.last_number(),
            "sled holds commits past the write-ahead log's end; nothing to replay"
        );
        checkpoint(inner, &mut log)?;
    } else if let Some(last) = recovered.last_number() {
        recovered.replay(|_, ops| apply(&inner.db, ops))?;
        inner.mark.committed(last);
        tracing::info!(
            folder = %inner.path.display(),
            commits = last.saturating_sub(sled_commits),
            "write-ahead log replayed into sled"
        );
        checkpoint(inner, &mut log)?;
    }
    if !inner.config.write_ahead_log {
        log.remove()?;
        inner.mark.set_logged(false)?;
        return Ok(None);
    }
    Ok(Some(Mutex::new(Logged { log, failed: None })))
}

impl Inner {
    /// Logs the commit numbered `number` (the batch's ops, its log blocks and the commit
    /// counter), then applies the same writes to sled with readers kept out. Call under
    /// the commit lock. A failure to log writes nothing to sled; a failure to apply
    /// stops all later writes until the database is opened again (the open replays the
    /// commit). Returns whether the log has grown past its checkpoint size (read under
    /// the same lock as the append).
    ///
    /// `durable`: the log is synced before sled sees the commit, which is applied key by
    /// key (an open replays whatever part of it sled lost). Otherwise (`Periodic`) the
    /// record is left for the next flush to sync, and the commit is applied as one sled
    /// batch, which sled recovers whole or not at all: sled may then hold commits whose
    /// records a power loss took from the log, and an open finds sled ahead of the log
    /// (see [`finish_open`]).
    ///
    /// # Errors
    ///
    /// The log's write or sync error (nothing applied, outcome unknown: the record may
    /// have reached the disk); sled's error or panic while applying; the earlier
    /// failure that stopped the log.
    pub(super) fn log_and_apply(
        &self,
        number: u64,
        ops: &[WriteOp],
        blocks: &[(Vec<u8>, Vec<u8>)],
        counter: &[u8],
        durable: bool,
    ) -> Result<bool> {
        let Some(mut logged) = self.lock_log("commit")? else {
            return Err(Error::storage("commit", "no write-ahead log"));
        };
        if let Some(failed) = &logged.failed {
            return Err(failed.clone());
        }
        let logged_ops: Vec<LoggedOp<'_>> = ops
            .iter()
            .map(|op| match op {
                WriteOp::Put { key, value } => LoggedOp::Put(key, value),
                WriteOp::Delete { key } => LoggedOp::Delete(key),
            })
            .chain(blocks.iter().map(|(key, block)| LoggedOp::Put(key, block)))
            .chain(std::iter::once(LoggedOp::Put(COUNTER_KEY, counter)))
            .collect();
        logged.log.append(number, &logged_ops, durable)?;
        let applied = {
            let _readers_out = self
                .applying
                .write()
                .map_err(|_| Error::storage("commit", "reader lock poisoned"))?;
            catch_unwind(AssertUnwindSafe(|| {
                if durable {
                    apply(&self.db, &logged_ops)
                } else {
                    apply_as_batch(&self.db, &logged_ops)
                }
            }))
            .unwrap_or_else(|panic| Err(Error::panicked("apply a logged commit", &*panic)))
        };
        if let Err(error) = applied {
            let stopped = Error::storage(
                "commit",
                format!(
                    "commit {number} is in the write-ahead log but sled failed to apply it \
                     ({error}); reopen the database to replay it"
                ),
            );
            logged.failed = Some(stopped);
            return Err(error);
        }
        Ok(logged.log.len() >= self.config.checkpoint_bytes)
    }

    /// Writes commit `number` into the commit mark without syncing it: the mark is how
    /// an open tells a log deleted, cut short or damaged at its end from a clean one.
    /// The write is in the page cache before the commit is acknowledged, so a crash of
    /// the process keeps it; it is synced by every flush (shutdown's too) and
    /// checkpoint, not per commit, which would cost a second device sync per commit.
    /// Until then an operating system crash or a power loss can leave an older mark: a
    /// mark that lags is never a false alarm, it only checks fewer commits. A failure is
    /// logged (the commit is durable), and the next commit writes the mark again.
    pub(super) fn count_in_mark(&self, number: u64) {
        if let Err(error) = self.mark.record(number) {
            warn!(%error, "the commit mark could not be written; the next commit tries again");
        }
    }

    /// Syncs the records that commits without durability left unsynced, and counts them
    /// in the commit mark (whose own sync follows): after this, every commit applied
    /// before the call is durable. Runs as the step of a flush.
    ///
    /// # Errors
    ///
    /// The log's sync error (which stops the log: the records it did not write may be
    /// lost, see `WriteAheadLog::sync`); the failure that stopped the log earlier.
    pub(super) fn sync_log(&self) -> Result<()> {
        let Some(mut logged) = self.lock_log("flush")? else {
            return Ok(());
        };
        if let Some(failed) = &logged.failed {
            return Err(failed.clone());
        }
        if let Some(last) = logged.log.sync()? {
            self.count_in_mark(last);
        }
        Ok(())
    }

    /// Makes everything applied durable in sled's own files, records it in the commit
    /// mark, and starts the log over. Call under the commit lock.
    ///
    /// # Errors
    ///
    /// Engine failures of sled's flush and fsync, the mark's or the log header's write.
    /// The log keeps its records then, and a later checkpoint tries again; only a new
    /// header that may have reached the disk unsynced stops the log until the database
    /// is opened again.
    pub(super) fn checkpoint(&self) -> Result<()> {
        let Some(mut logged) = self.lock_log("checkpoint")? else {
            return Ok(());
        };
        checkpoint(self, &mut logged.log)
    }

    /// The open log, locked for `operation` (`None`: the database runs without one).
    fn lock_log(&self, operation: &'static str) -> Result<Option<MutexGuard<'_, Logged>>> {
        let Some(wal) = &self.wal else {
            return Ok(None);
        };
        wal.lock()
            .map(Some)
            .map_err(|_| Error::storage(operation, "write-ahead log lock poisoned"))
    }
}

impl SledManager {
    /// [`Backend::commit_durable`](crate::Backend::commit_durable) (`durable`) or
    /// [`Backend::commit`](crate::Backend::commit) with the log: guards and log offsets
    /// as a plain commit, then [`Inner::log_and_apply`]. No step is left: a durable
    /// commit leaves only the mark's sync for the next flush, and the next flush syncs
    /// the record of one that is not ([`Inner::sync_log`]).
    pub(super) fn commit_logged(&self, batch: &WriteBatch, durable: bool) -> Result<Durable> {
        crate::backend::commit_mark::refuse_reserved(batch)?;
        let db = &self.inner.db;
        let mut state = self.commit_lock()?;
        let CommitState { guards, sequencer } = &mut *state;
        if let Err(failed) = check_guards(db, guards, batch)? {
            return Ok((Err(failed), None));
        }
        let assigned = sequencer.assign(&batch.appends, |log| highest_offset(db, log))?;
        let updates = guards.updates(&batch.ops);
        let number = self.inner.mark.next()?;
        let counter = number.to_be_bytes();
        let checkpoint_due =
            match self
                .inner
                .log_and_apply(number, &batch.ops, &assigned.blocks, &counter, durable)
            {
                Ok(due) => due,
                Err(e) => {
                    guards.clear();
                    sequencer.clear();
                    return Err(e);
                }
            };
        let blocks = assigned.blocks.iter().map(|(key, _)| key.as_slice());
        guards.committed(updates, &batch.ops, blocks.chain([COUNTER_KEY]));
        sequencer.committed(assigned);
        self.inner.mark.committed(number);
        if durable {
            // A commit that is not durable yet is counted by the flush that syncs it: the
            // mark never counts a commit a power loss could take from both the log and
            // sled.
            self.inner.count_in_mark(number);
        }
        // After the commit counts as applied: the checkpoint's base must include it. A
        // failure is left for the next commit; this one is durable in the log.
        if checkpoint_due && let Err(error) = self.inner.checkpoint() {
            warn!(%error, "write-ahead log checkpoint failed; the next commit tries again");
        }
        drop(state);
        Ok((Ok(()), None))
    }

    /// With the log, keeps commits from applying while a read runs (see `write_ahead`).
    pub(super) fn reading(&self) -> Result<Option<RwLockReadGuard<'_, ()>>> {
        if self.inner.wal.is_none() {
            return Ok(None);
        }
        self.inner
            .applying
            .read()
            .map(Some)
            .map_err(|_| Error::storage("read", "reader lock poisoned"))
    }

    /// [`Backend::visit_range`](crate::Backend::visit_range) with the log: pages of
    /// entries taken under the reader lock (sled's values are shared, not copied), each
    /// visited after it is released, so a slow visitor never holds commits back.
    pub(super) fn visit_in_pages(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        const PAGE: usize = 256;
        let mut from = start.to_vec();
        let mut page: Vec<(sled::IVec, sled::IVec)> = Vec::with_capacity(PAGE);
        loop {
            {
                let _reading = self.reading()?;
                for item in self.inner.db.range(from.as_slice()..end).take(PAGE) {
                    page.push(item.map_err(|e| engine_error("scan", e))?);
                }
            }
            for (key, value) in &page {
                if !visit(key, value)? {
                    return Ok(());
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => {
                    from.clear();
                    from.extend_from_slice(last);
                    from.push(0);
                    page.clear();
                }
                _ => return Ok(()),
            }
        }
    }
}

fn checkpoint(inner: &Inner, log: &mut WriteAheadLog) -> Result<()> {
    let applied = inner.mark.applied();
    inner.flush_durably()?;
    inner.mark.durable(applied)?;
    log.checkpointed(applied)
}

/// Applies logged writes to sled as one batch: sled's recovery keeps all of it or none.
fn apply_as_batch(db: &sled::Db, ops: &[LoggedOp<'_>]) -> Result<()> {
    let mut batch = sled::Batch::default();
    for op in ops {
        match op {
            LoggedOp::Put(key, value) => batch.insert(*key, *value),
            LoggedOp::Delete(key) => batch.remove(*key),
        }
    }
    db.apply_batch(batch)
        .map_err(|e| engine_error("apply a logged commit", e))
}

/// Applies logged writes to sled, key by key, in order.
fn apply(db: &sled::Db, ops: &[LoggedOp<'_>]) -> Result<()> {
    for op in ops {
        match op {
            LoggedOp::Put(key, value) => db.insert(key, *value).map(drop),
            LoggedOp::Delete(key) => db.remove(key).map(drop),
        }
        .map_err(|e| engine_error("apply a logged commit", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
