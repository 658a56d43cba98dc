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
use crate::crypto::{EncryptionKey, Keyring};
use crate::error::{Error, Result};
use crate::keys::{RecordKind, name_prefix, prefix_end};
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::sync::Arc;

/// Rows of one table are read this many at a time.
const PAGE: usize = 512;

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
    backend: Arc<dyn Backend>,
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
            backend: Arc::clone(&self.backend),
            codec: self.codec.clone(),
            _rows: PhantomData,
        }
    }
}

impl<V: Serialize + DeserializeOwned> Table<V> {
    /// Opens table `name` (1 to 512 bytes) on `backend`; with a 32-byte key every row is
    /// encrypted.
    pub fn open(
        backend: Arc<dyn Backend>,
        name: &str,
        encryption_key: Option<&[u8]>,
    ) -> Result<Self> {
        let key = encryption_key.map(EncryptionKey::new).transpose()?;
        Self::open_with_keyring(backend, name, &Keyring::from(key))
    }

    /// Opens table `name` (1 to 512 bytes) on `backend`; rows are sealed with the current
    /// key of `keyring` (none: in the clear), and rows sealed with any of its keys open.
    pub fn open_with_keyring(
        backend: Arc<dyn Backend>,
        name: &str,
        keyring: &Keyring,
    ) -> Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            prefix: name_prefix(RecordKind::TableRow, "table name", name)?,
            backend,
            codec: Codec {
                keyring: keyring.clone(),
                ..Codec::default()
            },
            _rows: PhantomData,
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend the table lives on.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
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
    pub fn get(&self, key: &str) -> Result<Option<V>> {
        let row_key = self.row_key(key);
        let Some(bytes) = self.backend.get(&row_key)? else {
            return Ok(None);
        };
        let decoded = self
            .codec
            .decode(&row_key, &bytes, MAX_EVENT_SIZE, &|| self.describe(key))?;
        Ok(Some(decoded.value))
    }

    /// The write that sets `key` to `value`, to commit in a batch of one's own (with a
    /// checkpoint, say).
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
    pub fn put(&self, key: &str, value: &V) -> Result<()> {
        let op = self.put_op(key, value)?;
        self.write(vec![op])
    }

    /// Removes `key`, durably.
    pub fn delete(&self, key: &str) -> Result<()> {
        self.write(vec![self.delete_op(key)])
    }

    /// Commits `ops` as one atomic batch and flushes.
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        let batch = WriteBatch {
            ops,
            ..WriteBatch::default()
        };
        match self.backend.commit(&batch)? {
            Ok(()) => self.backend.flush(),
            Err(failed) => Err(Error::storage(
                "table write",
                format!("unexpected guard failure {failed:?}"),
            )),
        }
    }

    /// Rows whose key starts with `prefix` (`""`: all), in key order.
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
    pub fn for_each(
        &self,
        prefix: &str,
        mut visit: impl FnMut(&str, V) -> Result<bool>,
    ) -> Result<()> {
        let start = self.row_key(prefix);
        let end = prefix_end(&start);
        let mut scratch = Scratch::default();
        self.backend
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

    /// Removes every row (for a rebuild), a page per durable batch; returns how many.
    pub fn clear(&self) -> Result<u64> {
        let start = self.prefix.clone();
        let end = prefix_end(&start);
        let mut removed = 0u64;
        loop {
            let page = self.backend.scan(&start, &end, PAGE, false)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryManager;

    fn table(name: &str, key: Option<&[u8]>, backend: &Arc<dyn Backend>) -> Result<Table<String>> {
        Table::open(Arc::clone(backend), name, key)
    }

    #[test]
    fn rows_are_ordered_by_key_and_tables_do_not_overlap() -> Result<()> {
        let backend: Arc<dyn Backend> = Arc::new(MemoryManager::default());
        let a = table("a", None, &backend)?;
        let ab = table("ab", None, &backend)?;
        a.put("k2", &"two".into())?;
        a.put("k1", &"one".into())?;
        ab.put("k1", &"other".into())?;
        assert_eq!(
            a.rows("")?,
            vec![("k1".into(), "one".into()), ("k2".into(), "two".into())]
        );
        assert_eq!(a.rows("k2")?, vec![("k2".into(), "two".into())]);
        assert_eq!(ab.rows("")?.len(), 1);
        assert_eq!(a.clear()?, 2);
        assert!(a.rows("")?.is_empty());
        assert_eq!(ab.get("k1")?, Some("other".into()));
        Ok(())
    }

    #[test]
    fn an_encrypted_row_needs_the_key() -> Result<()> {
        let backend: Arc<dyn Backend> = Arc::new(MemoryManager::default());
        table("t", Some(&[1u8; 32]), &backend)?.put("k", &"secret".into())?;
        let wrong = table("t", Some(&[2u8; 32]), &backend)?.get("k");
        assert!(matches!(wrong, Err(Error::Decryption { .. })), "{wrong:?}");
        let raw = backend.scan(&[0x06], &[0x07], 10, false)?;
        assert!(!raw[0].1.windows(6).any(|w| w == b"secret"));
        Ok(())
    }
}
