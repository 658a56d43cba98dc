//! Named tables beside the journals: typed rows under string keys, sealed like events
//! (CRC32, or XChaCha20-Poly1305 with the row's key as associated data), so a read model or
//! a dead letter is as private as the journal it comes from. Projection checkpoints, read
//! models and saga dead letters live here, in the same database as the events, so that a
//! row and a checkpoint can be written in one atomic batch.
//!
//! ```text
//! key   [0x06][len u16][table name][row key UTF-8]
//! value a format-v1 record (FORMAT.md)
//! ```

use crate::backend::{Backend, WriteBatch, WriteOp};
use crate::codec::{Codec, MAX_EVENT_SIZE, Scratch};
use crate::crypto::Keyring;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::keys::{RecordKind, name_prefix, prefix_end};
use crate::store::Durability;
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

/// Rows of one table are read this many at a time.
const PAGE: usize = 512;

/// A row read by [`Table::page`], with the time it was last written.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow<V> {
    /// The row's key.
    pub key: String,
    /// The row.
    pub value: V,
    /// When the row was last written (microsecond precision).
    pub written_at: SystemTime,
}

/// A table of rows of type `V` under string keys, ordered by key.
///
/// ```
/// use rush_store::{MemoryManager, Table};
/// let table = Table::<u64>::open(std::sync::Arc::new(MemoryManager::default()), "balances", Some(&[7u8; 32]))?;
/// table.put("alice", &100)?;
/// assert_eq!(table.get("alice")?, Some(100));
/// assert_eq!(table.rows("")?, vec![("alice".to_owned(), 100)]);
/// # Ok::<_, rush_store::Error>(())
/// ```
pub struct Table<V> {
    name: String,
    prefix: Vec<u8>,
    db: Database,
    codec: Codec,
    _rows: PhantomData<fn() -> V>,
}

impl<V> std::fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<V> Clone for Table<V> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            db: self.db.clone(),
            codec: self.codec.clone(),
            _rows: PhantomData,
        }
    }
}

impl<V: Serialize + DeserializeOwned> Table<V> {
    /// Opens table `name` (1 to 512 bytes) on `backend` (joining the [`Database`] open on
    /// it); with a 32-byte key every row is encrypted.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] for a key that is not 32 bytes; [`Error::InvalidArgument`] for
    /// a name that is empty or longer than [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes;
    /// [`Error::Io`] when the database's threads cannot start.
    pub fn open(
        backend: Arc<dyn Backend>,
        name: &str,
        encryption_key: Option<&[u8]>,
    ) -> Result<Self> {
        Self::open_in(Database::shortcut(backend, encryption_key, None)?, name)
    }

    /// Opens table `name` (1 to 512 bytes) on `backend` (joining the [`Database`] open on
    /// it); rows are sealed with the current key of `keyring` (none: in the clear), and
    /// rows sealed with any of its keys open.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a name that is empty or longer than
    /// [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes; [`Error::Io`] when the database's threads
    /// cannot start.
    pub fn open_with_keyring(
        backend: Arc<dyn Backend>,
        name: &str,
        keyring: &Keyring,
    ) -> Result<Self> {
        Self::open_in(
            Database::with_keyring(backend, keyring.clone(), None)?,
            name,
        )
    }

    /// Table `name` of `db`, sealed with the database's keys (rows are not compressed).
    pub(crate) fn open_in(db: Database, name: &str) -> Result<Self> {
        db.check_open()?;
        Ok(Self {
            name: name.to_owned(),
            prefix: name_prefix(RecordKind::TableRow, "table name", name)?,
            codec: Codec {
                keyring: db.settings.keyring.clone(),
                ..Codec::default()
            },
            db,
            _rows: PhantomData,
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database the table lives in.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn engine(&self) -> Result<Arc<dyn Backend>> {
        self.db.engine()
    }

    fn row_key(&self, key: &str) -> Vec<u8> {
        let mut row = Vec::with_capacity(self.prefix.len() + key.len());
        row.extend_from_slice(&self.prefix);
        row.extend_from_slice(key.as_bytes());
        row
    }

    fn describe(&self, key: &str) -> String {
        format!("row {key:?} of table {:?}", self.name)
    }

    /// The row at `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::Corrupted`] for a damaged row; [`Error::Decryption`] for a row sealed with
    /// a key the table does not hold; [`Error::Serialization`] for a row that does not
    /// decode as `V`; other engine failures ([`Error::Io`], [`Error::DiskFull`],
    /// [`Error::Storage`]).
    pub fn get(&self, key: &str) -> Result<Option<V>> {
        let row_key = self.row_key(key);
        let Some(bytes) = self.engine()?.get(&row_key)? else {
            return Ok(None);
        };
        let decoded = self
            .codec
            .decode(&row_key, &bytes, MAX_EVENT_SIZE, &|| self.describe(key))?;
        Ok(Some(decoded.value))
    }

    /// The write that sets `key` to `value`, to commit in a batch of one's own (with a
    /// checkpoint, say).
    ///
    /// # Errors
    ///
    /// [`Error::Serialization`] when `value` cannot be serialized;
    /// [`Error::InvalidArgument`] when it is larger than
    /// [`MAX_EVENT_SIZE`](crate::MAX_EVENT_SIZE).
    pub fn put_op(&self, key: &str, value: &V) -> Result<WriteOp> {
        let row_key = self.row_key(key);
        let encoded = self.codec.encode(
            &row_key,
            crate::journal::now_micros(),
            value,
            MAX_EVENT_SIZE,
        )?;
        Ok(WriteOp::Put {
            key: row_key,
            value: encoded.bytes,
        })
    }

    /// The write that removes `key`.
    pub fn delete_op(&self, key: &str) -> WriteOp {
        WriteOp::Delete {
            key: self.row_key(key),
        }
    }

    /// Sets `key` to `value`, durably (commit and flush).
    ///
    /// # Errors
    ///
    /// As [`Table::put_op`] and [`Table::write`].
    pub fn put(&self, key: &str, value: &V) -> Result<()> {
        let op = self.put_op(key, value)?;
        self.write(vec![op])
    }

    /// Removes `key`, durably.
    ///
    /// # Errors
    ///
    /// As [`Table::write`].
    pub fn delete(&self, key: &str) -> Result<()> {
        self.write(vec![self.delete_op(key)])
    }

    /// Commits `ops` as one atomic batch through the database's writer, durably.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::InvalidArgument`] for a key under the engine's reserved prefix; engine
    /// failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`],
    /// [`Error::Storage`], [`Error::Panicked`]), after which the write may have landed or
    /// not.
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let batch = WriteBatch {
            ops,
            ..WriteBatch::default()
        };
        unguarded(self.db.core.write(batch, Durability::Immediate))
    }

    /// [`Table::write`] for async callers: no thread blocks while the writer works.
    ///
    /// # Errors
    ///
    /// As [`Table::write`].
    pub async fn write_async(&self, ops: Vec<WriteOp>) -> Result<()> {
        let batch = WriteBatch {
            ops,
            ..WriteBatch::default()
        };
        unguarded(self.db.core.write_async(batch, Durability::Immediate).await)
    }

    /// [`Table::get`] on the database's threads.
    ///
    /// # Errors
    ///
    /// As [`Table::get`]; a panic in `V`'s `Deserialize` is [`Error::Panicked`].
    pub async fn get_async(&self, key: &str) -> Result<Option<V>>
    where
        V: Send + 'static,
    {
        let table = self.clone();
        let key = key.to_owned();
        self.db
            .core
            .compute("read table row", move || table.get(&key))
            .await
    }

    /// Rows whose key starts with `prefix` (`""`: all), in key order, collected in one
    /// `Vec`: for a table that grows, walk it with [`Table::for_each`] or [`Table::page`].
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::Corrupted`] for a damaged row or a row key that is not UTF-8;
    /// [`Error::Decryption`] for a row sealed with a key the table does not hold;
    /// [`Error::Serialization`] for a row that does not decode as `V`; other engine
    /// failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Storage`]).
    pub fn rows(&self, prefix: &str) -> Result<Vec<(String, V)>> {
        let mut out = Vec::new();
        self.for_each(prefix, |key, value| {
            out.push((key.to_owned(), value));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `visit` with each row whose key starts with `prefix`, in key order, page by
    /// page, until it returns `Ok(false)`.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::Corrupted`] for a damaged row or a row key that is not UTF-8;
    /// [`Error::Decryption`] for a row sealed with a key the table does not hold;
    /// [`Error::Serialization`] for a row that does not decode as `V`; other engine
    /// failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Storage`]). The first error
    /// `visit` returns stops the walk and is returned as it is.
    pub fn for_each(
        &self,
        prefix: &str,
        mut visit: impl FnMut(&str, V) -> Result<bool>,
    ) -> Result<()> {
        let start = self.row_key(prefix);
        let end = prefix_end(&start);
        let mut scratch = Scratch::default();
        self.engine()?
            .visit_range(&start, &end, &mut |row_key, bytes| {
                let key = row_key
                    .get(self.prefix.len()..)
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .ok_or_else(|| Error::Corrupted {
                        record: format!("a row of table {:?}", self.name),
                        reason: "row key is not UTF-8".into(),
                    })?;
                let decoded = self.codec.decode_with(
                    row_key,
                    bytes,
                    MAX_EVENT_SIZE,
                    &|| self.describe(key),
                    &mut scratch,
                )?;
                visit(key, decoded.value)
            })
    }

    /// Up to `limit` rows whose key starts with `prefix` and sorts after `after` (`None`:
    /// from the first), in key order, each with the time it was last written. One page of
    /// a walk the caller may pause between pages (to await, or to write): the next page
    /// starts after the last key of this one, and a page shorter than `limit` is the last.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::Corrupted`] for a damaged row or a row key that is not UTF-8;
    /// [`Error::Decryption`] for a row sealed with a key the table does not hold;
    /// [`Error::Serialization`] for a row that does not decode as `V`; other engine
    /// failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Storage`]).
    pub fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TableRow<V>>> {
        let first = self.row_key(prefix);
        let end = prefix_end(&first);
        let start = match after {
            // The smallest key above `after`'s.
            Some(after) => {
                let mut start = self.row_key(after);
                start.push(0);
                start.max(first)
            }
            None => first,
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let mut scratch = Scratch::default();
        let mut rows = Vec::with_capacity(limit.min(PAGE));
        for (row_key, bytes) in self.engine()?.scan(&start, &end, limit, false)? {
            let key = row_key
                .get(self.prefix.len()..)
                .and_then(|k| std::str::from_utf8(k).ok())
                .ok_or_else(|| Error::Corrupted {
                    record: format!("a row of table {:?}", self.name),
                    reason: "row key is not UTF-8".into(),
                })?;
            let decoded = self.codec.decode_with::<V>(
                &row_key,
                &bytes,
                MAX_EVENT_SIZE,
                &|| self.describe(key),
                &mut scratch,
            )?;
            rows.push(TableRow {
                key: key.to_owned(),
                value: decoded.value,
                written_at: crate::journal::micros_to_time(decoded.timestamp_micros),
            });
        }
        Ok(rows)
    }

    /// Removes every row (for a rebuild), a page per durable batch; returns how many.
    ///
    /// # Errors
    ///
    /// As [`Table::write`], for each page; the rows of the pages before an error stay
    /// removed.
    pub fn clear(&self) -> Result<u64> {
        let start = self.prefix.clone();
        let end = prefix_end(&start);
        let mut removed = 0u64;
        loop {
            let page = self.engine()?.scan(&start, &end, PAGE, false)?;
            if page.is_empty() {
                return Ok(removed);
            }
            removed += page.len() as u64;
            self.write(
                page.into_iter()
                    .map(|(key, _)| WriteOp::Delete { key })
                    .collect(),
            )?;
        }
    }
}

/// A write without guards cannot fail one.
fn unguarded(outcome: crate::database::CommitOutcome) -> Result<()> {
    outcome?.map_err(|failed| {
        Error::storage(
            "table write",
            format!("unexpected guard failure {failed:?}"),
        )
    })
}

#[cfg(test)]
mod tests;
