//! The writes a projection handler makes to tables of the runner's database, collected
//! until the runner commits them with the checkpoint in one atomic batch. Reads through the
//! transaction see its own pending writes, so two events of one page that update the same
//! row compose instead of the second overwriting the first. A row written many times in one
//! page is committed once, with its last value: a page of 1,024 events of one entity
//! writes its row once, not 1,024 times (engines that apply writes one by one, such as
//! sled with its write-ahead log, would otherwise pay for every one).

use rush_store::{Database, Error, Result, Table, WriteOp};
use serde::{Serialize, de::DeserializeOwned};
use std::any::Any;
use std::collections::HashMap;

/// A row written in this transaction: its value (`None`: deleted), typed for reads.
type Pending = Option<Box<dyn Any + Send + Sync>>;

/// A row written in this transaction: where its write is in `ops`, and its value.
struct Written {
    op: usize,
    value: Pending,
}

/// The pending read-model writes of one page of events (see the module docs of
/// [`crate::Projection`]). Created empty by the runner; committed or discarded by it.
pub struct ProjectionTx {
    db: Database,
    /// One write per row, in the order rows were first written.
    ops: Vec<WriteOp>,
    pending: HashMap<(String, String), Written>,
}

impl std::fmt::Debug for ProjectionTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionTx")
            .field("writes", &self.ops.len())
            .finish_non_exhaustive()
    }
}

impl ProjectionTx {
    /// An empty transaction on `db`: only tables of that database can be written.
    pub(crate) fn new(db: Database) -> Self {
        Self {
            db,
            ops: Vec::new(),
            pending: HashMap::new(),
        }
    }

    /// Refuses a table of another database: its writes could not be atomic with the
    /// checkpoint.
    fn check<V: Serialize + DeserializeOwned>(&self, table: &Table<V>) -> Result<()> {
        if table.database().same_database(&self.db) {
            return Ok(());
        }
        Err(Error::InvalidArgument(format!(
            "table {:?} lives in another database than the projection: open it with \
             Persistence::table so its writes commit with the checkpoint",
            table.name()
        )))
    }

    /// Sets `key` of `table` to `value` when the page commits.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a table of another database than the projection's,
    /// or a `value` larger than [`MAX_EVENT_SIZE`](rush_store::MAX_EVENT_SIZE);
    /// [`Error::Serialization`] when `value` cannot be serialized.
    pub fn put<V>(&mut self, table: &Table<V>, key: &str, value: V) -> Result<()>
    where
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.check(table)?;
        let op = table.put_op(key, &value)?;
        self.write(table.name(), key, op, Some(Box::new(value)));
        Ok(())
    }

    /// Removes `key` of `table` when the page commits.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a table of another database than the projection's.
    pub fn delete<V>(&mut self, table: &Table<V>, key: &str) -> Result<()>
    where
        V: Serialize + DeserializeOwned,
    {
        self.check(table)?;
        self.write(table.name(), key, table.delete_op(key), None);
        Ok(())
    }

    /// Records `op` as the write of row `key` of `table`: in place of the row's earlier
    /// write in this transaction, if any.
    fn write(&mut self, table: &str, key: &str, op: WriteOp, value: Pending) {
        let row = (table.to_owned(), key.to_owned());
        if let Some(written) = self.pending.get_mut(&row)
            && let Some(slot) = self.ops.get_mut(written.op)
        {
            *slot = op;
            written.value = value;
            return;
        }
        self.pending.insert(
            row,
            Written {
                op: self.ops.len(),
                value,
            },
        );
        self.ops.push(op);
    }

    /// The row at `key` of `table` as this transaction sees it: its own pending write if
    /// any, else the committed row.
    /// A committed row is read on the database's threads, not on the handler's.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a table of another database than the projection's,
    /// or a row this transaction wrote with another type than `V`; reading a committed
    /// row fails as [`Table::get_async`].
    pub async fn get<V>(&self, table: &Table<V>, key: &str) -> Result<Option<V>>
    where
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.check(table)?;
        let row = (table.name().to_owned(), key.to_owned());
        match self.pending.get(&row).map(|written| &written.value) {
            Some(None) => Ok(None),
            Some(Some(value)) => match value.downcast_ref::<V>() {
                Some(value) => Ok(Some(value.clone())),
                None => Err(Error::InvalidArgument(format!(
                    "row {key:?} of table {:?} was written with another row type",
                    table.name()
                ))),
            },
            None => table.get_async(key).await,
        }
    }

    /// Rows written so far (a row written twice counts once).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The writes, one per row, leaving the transaction empty for the next page.
    pub(crate) fn take_ops(&mut self) -> Vec<WriteOp> {
        self.pending.clear();
        std::mem::take(&mut self.ops)
    }
}
