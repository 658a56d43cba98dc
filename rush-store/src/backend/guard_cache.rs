//! An exact cache of the small values that guards check (an entity's deletion mark is 8
//! bytes).
//!
//! It is exact because every write to a `SledManager`'s database in this process goes
//! through `commit`, under the same lock as the cache, and sled's file lock keeps other
//! processes out. A guard on a cached key then costs a hash lookup instead of a tree read,
//! which on a group commit of a thousand actors is a third of the writer's time.

use super::WriteOp;
use std::collections::HashMap;

/// Values longer than this are not cached (records are never guarded on their value).
const MAX_CACHED_VALUE: usize = 64;
/// Past this many entries the cache starts afresh, bounding its memory (~10 MiB).
const MAX_ENTRIES: usize = 100_000;

/// What a committed write does to a cached key.
pub(crate) enum Update {
    /// The key now holds this value (`None`: absent).
    Now(Option<Vec<u8>>),
    /// The new value is too large to cache: forget the key.
    Forget,
}

/// Pending updates of cached keys, applied once their batch is committed.
pub(crate) type Updates = Vec<(Vec<u8>, Update)>;

#[derive(Debug, Default)]
pub(crate) struct GuardCache {
    values: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl GuardCache {
    /// Whether `key` holds `expected`, from the cache or from `load`; on a mismatch, what
    /// it holds. A small value that is read is cached; absent keys are not (an absent key
    /// is usually a slot about to be written, so caching it would only churn).
    pub(crate) fn check<E>(
        &mut self,
        key: &[u8],
        expected: Option<&[u8]>,
        load: impl FnOnce() -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Result<(), Option<Vec<u8>>>, E> {
        if let Some(cached) = self.values.get(key) {
            return Ok(if cached.as_deref() == expected {
                Ok(())
            } else {
                Err(cached.clone())
            });
        }
        let value = load()?;
        if let Some(small) = value.as_ref().filter(|v| v.len() <= MAX_CACHED_VALUE) {
            if self.values.len() >= MAX_ENTRIES {
                self.values.clear();
            }
            self.values.insert(key.to_vec(), Some(small.clone()));
        }
        Ok(if value.as_deref() == expected {
            Ok(())
        } else {
            Err(value)
        })
    }

    /// What `ops` will do to cached keys, to apply once they are committed.
    pub(crate) fn updates(&self, ops: &[WriteOp]) -> Updates {
        ops.iter()
            .filter_map(|op| {
                let (key, value) = match op {
                    WriteOp::Put { key, value } => (key, Some(value)),
                    WriteOp::Delete { key } => (key, None),
                };
                self.values.contains_key(key).then(|| {
                    let update = match value {
                        None => Update::Now(None),
                        Some(v) if v.len() <= MAX_CACHED_VALUE => Update::Now(Some(v.clone())),
                        Some(_) => Update::Forget,
                    };
                    (key.clone(), update)
                })
            })
            .collect()
    }

    /// Records committed updates.
    pub(crate) fn apply(&mut self, updates: Updates) {
        for (key, update) in updates {
            match update {
                Update::Now(value) => {
                    self.values.insert(key, value);
                }
                Update::Forget => {
                    self.values.remove(&key);
                }
            }
        }
    }

    /// Forgets everything (after a write whose outcome is unknown).
    pub(crate) fn clear(&mut self) {
        self.values.clear();
    }
}
