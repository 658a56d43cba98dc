//! Online backup: a consistent copy of a database's files, taken by the writer between two
//! groups, then opened and verified with the database's keys before it is reported.

use super::Database;
use crate::error::{Error, Result};

/// What [`Database::backup`] copied and verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    /// Bytes of the engine's files copied.
    pub bytes: u64,
    /// Events verified in the copy.
    pub events: u64,
    /// Snapshots verified in the copy.
    pub snapshots: u64,
    /// Table rows verified in the copy.
    pub table_rows: u64,
}

impl Database {
    /// Takes a consistent copy of the database into the new folder `dest` while the
    /// application runs: the writer finishes the writes sent before, flushes, and copies
    /// the engine's files before it commits anything else (writes wait meanwhile, for
    /// about as long as copying the files takes). The copy is then opened, on the
    /// database's reader threads, and every record verified with this database's keys.
    /// A `dest` that exists and is not empty is refused; a memory engine has nothing to
    /// copy ([`Error::InvalidArgument`]).
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`]: `dest` exists and is not empty, or the engine keeps no
    ///   files (memory, PostgreSQL).
    /// - [`Error::Io`] or [`Error::DiskFull`]: copying failed; other failures of the flush
    ///   before it as [`Database::flush`].
    /// - [`Error::Corrupted`]: the copy failed its verification; errors of opening and
    ///   reading the copy come as they are.
    /// - [`Error::Shutdown`] after [`Database::shutdown`]; [`Error::Panicked`] when the
    ///   engine panicked while copying.
    pub async fn backup(&self, dest: impl AsRef<std::path::Path>) -> Result<BackupReport> {
        let dest = dest.as_ref().to_path_buf();
        let occupied = std::fs::read_dir(&dest).is_ok_and(|mut entries| entries.next().is_some());
        if occupied {
            return Err(Error::InvalidArgument(format!(
                "{} exists and is not empty: give a new folder",
                dest.display()
            )));
        }
        let bytes = self.core.copy_files_async(dest.clone()).await?;
        let keyring = self.keyring().clone();
        let verified = self
            .run_blocking("verify a backup", move || {
                let (_, engine) = crate::engine_kind::open_existing(&dest, 64 * 1024 * 1024)?;
                let inspector = crate::inspect::Inspector::with_keyring(engine, &keyring);
                inspector.verify(&crate::inspect::Scope::All, &mut |_| true)
            })
            .await?;
        if !verified.is_ok() {
            return Err(Error::Corrupted {
                record: "the backup".into(),
                reason: format!("when verified, {}", verified.error_summary()),
            });
        }
        Ok(BackupReport {
            bytes,
            events: verified.events_checked,
            snapshots: verified.snapshots_checked,
            table_rows: verified.table_rows_checked,
        })
    }
}
