//! Online key rotation: every record an older key sealed is sealed again with the
//! database's current key, page by page through the writer, while the database serves.
//!
//! The steps, with no downtime beyond the restart that changes a key anywhere: open the
//! database with the new key as its encryption key and the old one among its decryption
//! keys (new records are sealed with the new key from then on), then run
//! [`Database::reseal_with_current_key`]. Each page is one guarded batch: a record that
//! changed meanwhile (a snapshot replaced by its successor, history deleted) fails the
//! guard, nothing of the page is written, and the page is read again. When it returns,
//! the old key opens nothing any more and can be dropped from the configuration.

use super::Database;
use crate::backend::{Guard, WriteBatch, WriteOp};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::journal::PAGE;
use crate::keys::{RecordKind, prefix_end};
use crate::store::Durability;

/// A page whose records keep changing under the walk is read again at most this often.
const MAX_RETRIES: u32 = 100;

/// The outcome of [`Database::reseal_with_current_key`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Records sealed again with the current key.
    pub resealed: u64,
    /// Records already sealed with it.
    pub already_current: u64,
    /// Pages read again because a record changed between the read and the commit.
    pub retried_pages: u64,
    /// The current key's id, as record headers store it.
    pub key_id: u32,
}

impl Database {
    /// Seals again with the current key every event, snapshot and table row that an
    /// older key (or none) sealed, while actors and other views keep reading and writing.
    /// Runs on the database's threads and writer; resumable (a rerun skips what is done).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the database has no encryption key;
    /// [`Error::Corrupted`] or [`Error::Decryption`] for a record that cannot be opened (its
    /// page is not written); [`Error::Storage`] when a page kept changing under the rotation
    /// past its retries; [`Error::Shutdown`] after [`Database::shutdown`]; engine failures
    /// ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`]) or
    /// [`Error::Panicked`]. Pages written before the error stay resealed: running it again
    /// resumes.
    pub async fn reseal_with_current_key(&self) -> Result<ResealReport> {
        let Some(current) = self.keyring().current() else {
            return Err(Error::InvalidArgument(
                "the database has no encryption key to seal records with".into(),
            ));
        };
        let mut report = ResealReport {
            key_id: current.id(),
            ..ResealReport::default()
        };
        let codec = Codec {
            keyring: self.keyring().clone(),
            ..Codec::default()
        };
        for kind in [
            RecordKind::Event,
            RecordKind::Snapshot,
            RecordKind::TableRow,
        ] {
            let prefix = vec![kind as u8];
            let end = prefix_end(&prefix);
            let mut from = prefix;
            let mut retries = 0;
            loop {
                let (batch, done, next) = self.reseal_page(&codec, &from, &end).await?;
                let pending = batch.ops.len() as u64;
                if pending > 0 {
                    let committed = self.core.write_async(batch, Durability::Immediate).await?;
                    if committed.is_err() {
                        retries += 1;
                        report.retried_pages += 1;
                        if retries > MAX_RETRIES {
                            return Err(Error::storage(
                                "reseal",
                                "records kept changing under the rotation",
                            ));
                        }
                        continue;
                    }
                }
                retries = 0;
                report.resealed += pending;
                report.already_current += done;
                match next {
                    Some(next) => from = next,
                    None => break,
                }
            }
        }
        Ok(report)
    }

    /// One page from `from`: the guarded batch that reseals what needs it, how many were
    /// current already, and where the next page starts (`None`: the range is done).
    async fn reseal_page(
        &self,
        codec: &Codec,
        from: &[u8],
        end: &[u8],
    ) -> Result<(WriteBatch, u64, Option<Vec<u8>>)> {
        let (codec, from, end) = (codec.clone(), from.to_vec(), end.to_vec());
        self.core
            .read("reseal", move |engine| {
                let page = engine.scan(&from, &end, PAGE, false)?;
                let (batch, current) =
                    reseal_batch(&codec, &page, &|key| format!("record {key:?}"))?;
                let next = match page.last() {
                    Some((last, _)) if page.len() == PAGE => {
                        let mut next = last.clone();
                        next.push(0);
                        Some(next)
                    }
                    _ => None,
                };
                Ok((batch, current, next))
            })
            .await
    }
}

/// The guarded batch that seals the records of `page` again with `codec`'s current key
/// (each guarded on the value it had, so a record changed meanwhile fails the batch), and
/// how many were sealed with that key already.
pub(crate) fn reseal_batch(
    codec: &Codec,
    page: &[(Vec<u8>, Vec<u8>)],
    describe: &dyn Fn(&[u8]) -> String,
) -> Result<(WriteBatch, u64)> {
    let mut batch = WriteBatch::default();
    let mut current = 0;
    for (key, value) in page {
        match codec.reseal(key, value, &|| describe(key))? {
            Some(resealed) => {
                batch.guards.push(Guard {
                    key: key.clone(),
                    expected: Some(value.clone()),
                });
                batch.ops.push(WriteOp::Put {
                    key: key.clone(),
                    value: resealed,
                });
            }
            None => current += 1,
        }
    }
    Ok((batch, current))
}
