//! Key rotation: every record of the entity is opened and sealed again with the new key.
//! Records carry the id of the key that sealed them, so a rotation that stops halfway
//! leaves each record readable with one of the two keys, and running it again skips the
//! records already done.

use super::{Durability, Store};
use crate::backend::{Guard, WriteBatch, WriteOp};
use crate::crypto::EncryptionKey;
use crate::error::{Error, Result};
use crate::journal::PAGE;
use crate::keys::{RecordKind, prefix_end};
use crate::persistent_actor::PersistentActor;
use tracing::{info, info_span};

impl<A: PersistentActor> Store<A> {
    /// Re-encrypts every event and snapshot of the entity with `new_key` (32 bytes), then
    /// seals new records with it. The old key stays readable in this handle. Also encrypts
    /// an entity that was stored without a key. Returns how many records were rewritten.
    ///
    /// If it is interrupted, open the store with either key (adding the other with
    /// [`add_decryption_key`](Store::add_decryption_key)) and call it again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when `new_key` is not 32 bytes; [`Error::Corrupted`],
    /// [`Error::Decryption`] or [`Error::Serialization`] for a record that cannot be opened
    /// to be sealed again; [`Error::Conflict`] when a record changed during the rotation
    /// (nothing of that page was written: call it again). [`Error::Poisoned`] when an
    /// earlier write of this handle failed; [`Error::Shutdown`] after
    /// [`Database::shutdown`](crate::Database::shutdown); engine failures ([`Error::Io`],
    /// [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`]) reading; an error of
    /// a commit that may have written (not [`Error::nothing_written`]) poisons this
    /// handle.
    pub fn rotate_encryption_key(&mut self, new_key: &[u8]) -> Result<u64> {
        let _span = info_span!(
            "rotate_key",
            collection = self.key.collection(),
            entity = self.key.entity_id()
        )
        .entered();
        self.check_writable()?;
        let new_key = EncryptionKey::new(new_key)?;
        let mut rotating = self.codec.clone();
        rotating.keyring.promote(new_key);
        let mut rewritten = 0u64;
        let engine = self.engine()?;
        for kind in [RecordKind::Event, RecordKind::Snapshot] {
            let prefix = self.key.prefix(kind);
            let end = prefix_end(&prefix);
            let mut from = prefix;
            loop {
                let page = engine.scan(&from, &end, PAGE, false)?;
                let full = page.len() == PAGE;
                let mut batch = WriteBatch::default();
                for (record_key, value) in &page {
                    let seq = self.key.seq_of(kind, record_key).unwrap_or(0);
                    let describe = || self.key.describe(kind, seq);
                    if let Some(resealed) = rotating.reseal(record_key, value, &describe)? {
                        batch.guards.push(Guard {
                            key: record_key.clone(),
                            expected: Some(value.clone()),
                        });
                        batch.ops.push(WriteOp::Put {
                            key: record_key.clone(),
                            value: resealed,
                        });
                    }
                }
                if !batch.ops.is_empty() {
                    rewritten += batch.ops.len() as u64;
                    // A record changed meanwhile (another writer): nothing of the page was
                    // written; running the rotation again picks it up.
                    self.db
                        .core
                        .write(batch, Durability::Immediate)
                        .inspect_err(|e| {
                            if !e.nothing_written() {
                                self.poison(e);
                            }
                        })?
                        .map_err(|_| Error::Conflict {
                            expected: self.highest,
                            actual: self.highest,
                        })?;
                }
                match page.last() {
                    Some((last, _)) if full => {
                        from = last.clone();
                        from.push(0);
                    }
                    _ => break,
                }
            }
        }
        self.codec = rotating;
        info!(rewritten, "key rotated");
        Ok(rewritten)
    }
}
