//! Offsets of ordered logs, assigned at commit under the backend's commit lock, so that
//! they are gap-free and follow commit order; and the signal that wakes log readers.

use super::LogAppend;
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Per log, the highest offset committed (cached after the first read of the log).
#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    last: HashMap<Vec<u8>, u64>,
}

/// The keys of a batch's appends and the offsets they take, applied to the cache once the
/// batch is committed.
pub(crate) struct Assigned {
    pub(crate) keys: Vec<Vec<u8>>,
    highest: Vec<(Vec<u8>, u64)>,
}

impl Sequencer {
    /// Numbers `appends` after each log's highest offset, loading an uncached one with
    /// `highest_stored` (the offset at the end of the log's last key, 0 when empty).
    pub(crate) fn assign(
        &self,
        appends: &[LogAppend],
        mut highest_stored: impl FnMut(&[u8]) -> Result<u64>,
    ) -> Result<Assigned> {
        let mut highest: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut keys = Vec::with_capacity(appends.len());
        for append in appends {
            let position = match highest.iter().position(|(log, _)| *log == append.log) {
                Some(position) => position,
                None => {
                    let stored = match self.last.get(&append.log) {
                        Some(&offset) => offset,
                        None => highest_stored(&append.log)?,
                    };
                    highest.push((append.log.clone(), stored));
                    highest.len() - 1
                }
            };
            let Some((_, offset)) = highest.get_mut(position) else {
                return Err(Error::storage("assign offsets", "log slot out of range"));
            };
            *offset = offset
                .checked_add(1)
                .ok_or_else(|| Error::storage("assign offsets", "log offsets exhausted"))?;
            let mut key = Vec::with_capacity(append.log.len() + 8);
            key.extend_from_slice(&append.log);
            key.extend_from_slice(&offset.to_be_bytes());
            keys.push(key);
        }
        Ok(Assigned { keys, highest })
    }

    /// Records the offsets of a committed batch.
    pub(crate) fn committed(&mut self, assigned: Assigned) {
        for (log, offset) in assigned.highest {
            self.last.insert(log, offset);
        }
    }

    /// Forgets everything (after a write whose outcome is unknown).
    pub(crate) fn clear(&mut self) {
        self.last.clear();
    }
}

/// The offset at the end of a log key (`log ‖ offset`), if it is one.
pub(crate) fn offset_of(log: &[u8], key: &[u8]) -> Option<u64> {
    if key.len() != log.len() + 8 || !key.starts_with(log) {
        return None;
    }
    crate::keys::read_u64(key, log.len())
}

/// Wakes log readers after commits that appended (a counter in a watch channel: a slow
/// reader sees only the newest value, so the signal never buffers).
#[derive(Debug)]
pub(crate) struct AppendSignal {
    sender: tokio::sync::watch::Sender<u64>,
}

impl Default for AppendSignal {
    fn default() -> Self {
        Self {
            sender: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl AppendSignal {
    pub(crate) fn notify(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(log: &[u8]) -> LogAppend {
        LogAppend {
            log: log.to_vec(),
            value: Vec::new(),
        }
    }

    #[test]
    fn offsets_continue_each_log_and_only_count_once_committed() -> Result<()> {
        let mut sequencer = Sequencer::default();
        let assigned = sequencer.assign(&[append(b"a"), append(b"b"), append(b"a")], |log| {
            Ok(if log == b"a" { 7 } else { 0 })
        })?;
        let offsets: Vec<_> = assigned
            .keys
            .iter()
            .zip([&b"a"[..], b"b", b"a"])
            .map(|(key, log)| offset_of(log, key))
            .collect();
        assert_eq!(offsets, vec![Some(8), Some(1), Some(9)]);
        // Not committed: the next batch starts from the stored offsets again.
        let again = sequencer.assign(&[append(b"a")], |_| Ok(7))?;
        assert_eq!(offset_of(b"a", &again.keys[0]), Some(8));
        sequencer.committed(again);
        let next = sequencer.assign(&[append(b"a")], |_| panic!("cached"))?;
        assert_eq!(offset_of(b"a", &next.keys[0]), Some(9));
        Ok(())
    }
}
