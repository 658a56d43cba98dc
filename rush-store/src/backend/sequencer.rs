//! Offsets of ordered logs, assigned at commit under the backend's commit lock, so that
//! they are gap-free and follow commit order.

use super::LogAppend;
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
    /// offset, loading an uncached one with `highest_stored` (see [`block_end`]).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when a log's offsets would pass `u64::MAX`;
    /// [`Error::InvalidArgument`] when a block would hold more than `u32::MAX` entries or
    /// an entry is longer than `u32::MAX` bytes; and any error of `highest_stored`.
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
            let block = encode_block(&key, &values)?;
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

/// Version byte of a log block.
const BLOCK_VERSION: u8 = 1;
/// Length of the CRC-32 that ends a block.
const BLOCK_CRC_LEN: usize = 4;

/// `[version u8][count u32]([len u32][value])*[crc32 u32]`, all big-endian; the CRC covers
/// the block's key and every byte before it, so a damaged or moved block is refused.
fn encode_block(key: &[u8], values: &[&[u8]]) -> Result<Vec<u8>> {
    let too_big = |_| Error::InvalidArgument("log block too large".into());
    let mut block =
        Vec::with_capacity(5 + values.iter().map(|v| 4 + v.len()).sum::<usize>() + BLOCK_CRC_LEN);
    block.push(BLOCK_VERSION);
    block.extend_from_slice(&u32::try_from(values.len()).map_err(too_big)?.to_be_bytes());
    for value in values {
        block.extend_from_slice(&u32::try_from(value.len()).map_err(too_big)?.to_be_bytes());
        block.extend_from_slice(value);
    }
    let crc = block_crc(key, &block);
    block.extend_from_slice(&crc.to_be_bytes());
    Ok(block)
}

fn block_crc(key: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    hasher.update(body);
    hasher.finalize()
}

/// The values of the log block stored at `key`, in offset order; `None` if it is
/// malformed or fails its CRC.
pub fn decode_block<'a>(key: &[u8], block: &'a [u8]) -> Option<Vec<&'a [u8]>> {
    let (body, crc) = block.split_at_checked(block.len().checked_sub(BLOCK_CRC_LEN)?)?;
    let (&version, rest) = body.split_first()?;
    if version != BLOCK_VERSION {
        return None;
    }
    let (count, mut rest) = rest.split_first_chunk::<4>()?;
    let count = u32::from_be_bytes(*count) as usize;
    let mut values = Vec::with_capacity(count.min(rest.len() / 4));
    for _ in 0..count {
        let (len, after) = rest.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        if after.len() < len {
            return None;
        }
        let (value, after) = after.split_at(len);
        values.push(value);
        rest = after;
    }
    // The structure is read first, so a fuzzer exercises it whatever the checksum.
    let stored = u32::from_be_bytes(crc.try_into().ok()?);
    (rest.is_empty() && count > 0 && block_crc(key, body) == stored).then_some(values)
}

/// The offset of the first entry of a block key (`log ‖ offset`), if it is one.
pub fn offset_of(log: &[u8], key: &[u8]) -> Option<u64> {
    if key.len() != log.len() + 8 || !key.starts_with(log) {
        return None;
    }
    crate::keys::read_u64(key, log.len())
}

/// The offset of the last entry of the block stored at `key`.
///
/// # Errors
///
/// [`Error::Corrupted`] when `key` is not a block key of `log` or the block is malformed or
/// fails its CRC.
pub fn block_end(log: &[u8], key: &[u8], block: &[u8]) -> Result<u64> {
    let corrupted = || Error::Corrupted {
        record: format!("log block {key:?}"),
        reason: "malformed key or block".into(),
    };
    let first = offset_of(log, key).ok_or_else(corrupted)?;
    let count = decode_block(key, block).ok_or_else(corrupted)?.len() as u64;
    first.checked_add(count - 1).ok_or_else(corrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(decode_block(key_a, block_a), Some(vec![&b"x"[..], b"zz"]));
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

    #[test]
    fn malformed_blocks_are_refused() {
        let key = b"log\0\0\0\0\0\0\0\x01";
        let good = encode_block(key, &[b"ab", b"c"]).unwrap();
        assert!(decode_block(key, &good).is_some());
        assert!(decode_block(key, &good[..good.len() - 1]).is_none());
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode_block(key, &longer).is_none());
        // Every single flipped bit is caught, and so is a block moved to another key.
        for at in 0..good.len() * 8 {
            let mut flipped = good.clone();
            flipped[at / 8] ^= 1 << (at % 8);
            assert!(decode_block(key, &flipped).is_none(), "bit {at}");
        }
        assert!(decode_block(b"log\0\0\0\0\0\0\0\x02", &good).is_none());
        assert!(decode_block(key, &[BLOCK_VERSION, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(decode_block(key, &[9, 0, 0, 0, 1, 0, 0, 0, 0]).is_none());
    }
}
