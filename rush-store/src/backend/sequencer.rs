//! Offsets of ordered logs, assigned at commit under the backend's commit lock, so that
//! they are gap-free and follow commit order.

use super::LogAppend;
use super::log_block::encode_block;
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Per log, the highest offset committed (cached after the first read of the log).
#[derive(Debug, Default)]
pub struct Sequencer {
    last: HashMap<Vec<u8>, u64>,
}

/// The blocks a batch's appends become (one per log: key and value), and the offsets
/// they take, applied to the cache once the batch is committed.
#[derive(Debug)]
pub struct Assigned {
    /// One `(key, block)` per log, to be written with the batch.
    pub blocks: Vec<(Vec<u8>, Vec<u8>)>,
    highest: Vec<(Vec<u8>, u64)>,
}

impl Sequencer {
    /// Gathers the appends of each log into one block numbered after the log's highest
    /// offset, loading an uncached one with `highest_stored` (see
    /// [`block_end`](super::block_end)). The blocks are written in the current version
    /// (FORMAT.md: version 2, prefix-compressed).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when a log's offsets would pass `u64::MAX`, and any error of
    /// `highest_stored`.
    pub fn assign(
        &self,
        appends: &[LogAppend],
        mut highest_stored: impl FnMut(&[u8]) -> Result<u64>,
    ) -> Result<Assigned> {
        let mut logs: Vec<(&[u8], Vec<&[u8]>)> = Vec::new();
        for append in appends {
            match logs
                .iter_mut()
                .find(|(log, _)| *log == append.log.as_slice())
            {
                Some((_, values)) => values.push(&append.value),
                None => logs.push((&append.log, vec![&append.value])),
            }
        }
        let mut assigned = Assigned {
            blocks: Vec::with_capacity(logs.len()),
            highest: Vec::with_capacity(logs.len()),
        };
        for (log, values) in logs {
            let stored = match self.last.get(log) {
                Some(&offset) => offset,
                None => highest_stored(log)?,
            };
            let exhausted = || Error::storage("assign offsets", "log offsets exhausted");
            let first = stored.checked_add(1).ok_or_else(exhausted)?;
            let last = stored
                .checked_add(values.len() as u64)
                .ok_or_else(exhausted)?;
            let mut key = Vec::with_capacity(log.len() + 8);
            key.extend_from_slice(log);
            key.extend_from_slice(&first.to_be_bytes());
            let block = encode_block(&key, &values);
            assigned.blocks.push((key, block));
            assigned.highest.push((log.to_vec(), last));
        }
        Ok(assigned)
    }

    /// Records the offsets of a committed batch.
    pub fn committed(&mut self, assigned: Assigned) {
        for (log, offset) in assigned.highest {
            self.last.insert(log, offset);
        }
    }

    /// Forgets everything (after a write whose outcome is unknown).
    pub fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{block_end, decode_block, offset_of};

    fn append(log: &[u8], value: &[u8]) -> LogAppend {
        LogAppend {
            log: log.to_vec(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn each_log_gets_one_block_numbered_after_its_end() -> Result<()> {
        let mut sequencer = Sequencer::default();
        let appends = [append(b"a", b"x"), append(b"b", b"y"), append(b"a", b"zz")];
        let assigned = sequencer.assign(&appends, |log| Ok(if log == b"a" { 7 } else { 0 }))?;
        assert_eq!(assigned.blocks.len(), 2);
        let (key_a, block_a) = &assigned.blocks[0];
        assert_eq!(offset_of(b"a", key_a), Some(8));
        let mut entries = Vec::new();
        decode_block(key_a, block_a)
            .expect("a valid block")
            .visit(&mut |entry| {
                entries.push(entry.to_vec());
                Ok(true)
            })?;
        assert_eq!(entries, [b"x".to_vec(), b"zz".to_vec()]);
        assert_eq!(block_end(b"a", key_a, block_a)?, 9);
        assert_eq!(offset_of(b"b", &assigned.blocks[1].0), Some(1));
        // Not committed: the next batch starts from the stored offsets again.
        let again = sequencer.assign(&[append(b"a", b"w")], |_| Ok(9))?;
        assert_eq!(offset_of(b"a", &again.blocks[0].0), Some(10));
        sequencer.committed(again);
        let next = sequencer.assign(&[append(b"a", b"v")], |_| panic!("cached"))?;
        assert_eq!(offset_of(b"a", &next.blocks[0].0), Some(11));
        Ok(())
    }
}
