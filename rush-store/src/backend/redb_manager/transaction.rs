//! One redb write transaction: the guards, the log blocks, the writes and the commit
//! counter of a batch, with the guard cache, the sequencer and the commit mark kept in step.

use super::{COMMITS, ENGINE, Failure, RECORDS, RedbManager, guarded, log_end};
use crate::backend::commit_mark::refuse_reserved;
use crate::backend::{Durable, GuardFailed, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use redb::ReadableTable;

impl RedbManager {
    /// One write transaction: guards, log blocks, writes and the commit counter; with
    /// `Durability::Immediate` it is durable when it returns, and so is every commit
    /// before it, which the returned step records in the mark.
    pub(super) fn commit_with(
        &self,
        batch: &WriteBatch,
        durability: redb::Durability,
    ) -> Result<Durable> {
        refuse_reserved(batch)?;
        let mut sequencer = self.sequencer()?;
        let mut guards = self
            .inner
            .guards
            .lock()
            .map_err(|_| Error::storage("commit", "guard cache poisoned by a panic"))?;
        let number = self.inner.mark.next()?;
        let outcome = guarded(&self.file(), "write batch", || {
            let mut txn = self.inner.db.begin_write()?;
            txn.set_durability(durability)?;
            let assigned = {
                let mut table = txn.open_table(RECORDS)?;
                for (index, guard) in batch.guards.iter().enumerate() {
                    let checked = guards.check(
                        &guard.key,
                        guard.expected.as_deref(),
                        || -> std::result::Result<_, Failure> {
                            Ok(table.get(guard.key.as_slice())?.map(|v| v.value().to_vec()))
                        },
                        || -> std::result::Result<_, Failure> {
                            let first = table
                                .range::<&[u8]>(guard.key.as_slice()..)?
                                .next()
                                .transpose()?;
                            Ok(first.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
                        },
                    )?;
                    if let Err(actual) = checked {
                        // Dropping the transaction aborts it: nothing is written.
                        return Ok(Err(GuardFailed { index, actual }));
                    }
                }
                let assigned = sequencer.assign(&batch.appends, |log| log_end(&table, log))?;
                for op in &batch.ops {
                    match op {
                        WriteOp::Put { key, value } => {
                            table.insert(key.as_slice(), value.as_slice())?;
                        }
                        WriteOp::Delete { key } => {
                            table.remove(key.as_slice())?;
                        }
                    }
                }
                for (key, block) in &assigned.blocks {
                    table.insert(key.as_slice(), block.as_slice())?;
                }
                assigned
            };
            txn.open_table(ENGINE)?.insert(COMMITS, number)?;
            let updates = guards.updates(&batch.ops);
            txn.commit()?;
            Ok(Ok((assigned, updates)))
        });
        match outcome {
            Ok(Ok((assigned, updates))) => {
                let blocks = assigned.blocks.iter().map(|(key, _)| key.as_slice());
                guards.committed(updates, &batch.ops, blocks);
                sequencer.committed(assigned);
                self.inner.mark.committed(number);
                let confirmation = match durability {
                    redb::Durability::Immediate => self.inner.mark.confirmation(number),
                    _ => None,
                };
                Ok((Ok(()), confirmation))
            }
            Ok(Err(failed)) => Ok((Err(failed), None)),
            Err(e) => {
                guards.clear();
                sequencer.clear();
                Err(e)
            }
        }
    }
}
