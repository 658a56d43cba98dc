//! An in-memory backend with the same semantics as sled, for tests. Clones share data.

use super::log_block::block_end;
use super::{Backend, GuardFailed, Sequencer, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

/// A database in memory. Cheap to clone; clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryManager {
    data: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl MemoryManager {
    fn lock(&self) -> Result<MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>>> {
        self.data
            .lock()
            .map_err(|_| Error::storage("lock", "memory database lock poisoned by a panic"))
    }
}

impl Backend for MemoryManager {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lock()?.get(key).cloned())
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let data = self.lock()?;
        let range = data.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)));
        let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(if reverse {
            range.rev().take(limit).map(clone).collect()
        } else {
            range.take(limit).map(clone).collect()
        })
    }

    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        super::commit_mark::refuse_reserved(batch)?;
        let mut data = self.lock()?;
        for (index, guard) in batch.guards.iter().enumerate() {
            let actual = data.get(&guard.key);
            if actual != guard.expected.as_ref() {
                return Ok(Err(GuardFailed {
                    index,
                    actual: actual.cloned(),
                }));
            }
        }
        // Memory reads each log's end every time: there is nothing slow to cache.
        let assigned = Sequencer::default().assign(&batch.appends, |log| {
            let end = crate::keys::prefix_end(log);
            let last = data
                .range::<[u8], _>((Bound::Included(log), Bound::Excluded(end.as_slice())))
                .next_back();
            last.map_or(Ok(0), |(key, block)| block_end(log, key, block))
        })?;
        for op in &batch.ops {
            match op {
                WriteOp::Put { key, value } => {
                    data.insert(key.clone(), value.clone());
                }
                WriteOp::Delete { key } => {
                    data.remove(key);
                }
            }
        }
        for (key, block) in assigned.blocks {
            data.insert(key, block);
        }
        Ok(Ok(()))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(0)
    }

    fn identity(&self) -> usize {
        Arc::as_ptr(&self.data) as usize
    }
}
