//! Where each projection got to: one row per projection name in the table
//! [`CHECKPOINT_TABLE`], beside the journal, so that an exactly-once runner can commit a
//! checkpoint in the same atomic batch as the read-model writes it covers.

use rush_store::{Backend, Keyring, Table, WriteOp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The table of projection checkpoints (row key: the projection's name).
pub const CHECKPOINT_TABLE: &str = "rush.projection-checkpoints";

/// The stored progress of one projection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every log entry up to this offset is handled (0: none).
    pub offset: u64,
    /// A rebuild was asked and is not finished: the next runner clears the read model and
    /// starts from 0 before anything else.
    pub rebuilding: bool,
}

/// The checkpoint rows of one database.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoints {
    table: Table<Checkpoint>,
}

impl Checkpoints {
    pub(crate) fn open(backend: Arc<dyn Backend>, keyring: &Keyring) -> rush_store::Result<Self> {
        Ok(Self {
            table: Table::open_with_keyring(backend, CHECKPOINT_TABLE, keyring)?,
        })
    }

    /// The checkpoint of `projection` (the default before its first commit).
    pub(crate) fn load(&self, projection: &str) -> rush_store::Result<Checkpoint> {
        Ok(self.table.get(projection)?.unwrap_or_default())
    }

    /// The write that sets `projection`'s checkpoint, for a batch with read-model writes.
    pub(crate) fn put_op(
        &self,
        projection: &str,
        checkpoint: Checkpoint,
    ) -> rush_store::Result<WriteOp> {
        self.table.put_op(projection, &checkpoint)
    }

    /// Commits `ops` (rows of any table on this backend, with a checkpoint row among them)
    /// as one atomic batch, then flushes.
    pub(crate) fn write(&self, ops: Vec<rush_store::WriteOp>) -> rush_store::Result<()> {
        self.table.write(ops)
    }

    /// Sets `projection`'s checkpoint, durably.
    pub(crate) fn save(&self, projection: &str, checkpoint: Checkpoint) -> rush_store::Result<()> {
        self.table.put(projection, &checkpoint)
    }
}
