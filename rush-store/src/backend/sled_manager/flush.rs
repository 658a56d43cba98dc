//! Making sled's writes durable: sled's own flush (`sync_file_range`, so a process crash
//! keeps the writes), then an fsync of its `db` file and of the blob files sled never syncs
//! (so a power loss keeps them too). Runs as the step the writer hands to the confirmer
//! (see `Backend::flush_deferred`), beside the next commits.

use super::{Inner, engine_error};
use crate::error::{Error, Result};
use std::fs::File;

impl Inner {
    /// sled's flush, then the fsync of its `db` file and of new blob files: everything
    /// applied before the call is durable when it returns.
    pub(super) fn flush_durably(&self) -> Result<()> {
        // Blob files of writes committed before this point exist when sled's flush returns.
        self.db.flush().map_err(|e| engine_error("flush", e))?;
        if let Some(file) = &self.db_file {
            file.sync_data().map_err(|e| Error::from_io("fsync", &e))?;
            self.sync_new_blobs()?;
        }
        Ok(())
    }

    /// fsyncs blob files written since the last call: sled moves any log message over a
    /// quarter of a segment (a large value, or an index node rewritten with many small
    /// ones) to `blobs/<lsn>` and never syncs it. So the folder is listed at every flush
    /// (one `getdents`, next to an fsync), and every error on the way is reported: a blob
    /// that could not be synced is data that is not durable. A blob sled removed
    /// meanwhile, or no folder at all, needs no sync.
    fn sync_new_blobs(&self) -> Result<()> {
        let dir = self.path.join("blobs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::from_io("list sled's blob folder", &e)),
        };
        let mut synced = self
            .synced_blobs
            .lock()
            .map_err(|_| Error::storage("flush", "blob lock poisoned"))?;
        let mut highest = *synced;
        for entry in entries {
            let entry = entry.map_err(|e| Error::from_io("list sled's blob folder", &e))?;
            let Some(lsn) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if lsn > *synced {
                match File::open(entry.path()) {
                    Ok(file) => file
                        .sync_all()
                        .map_err(|e| Error::from_io("fsync a sled blob", &e))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::from_io("open a sled blob", &e)),
                }
                highest = highest.max(lsn);
            }
        }
        if highest > *synced {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::from_io("fsync sled's blob folder", &e))?;
            *synced = highest;
        }
        Ok(())
    }
}
