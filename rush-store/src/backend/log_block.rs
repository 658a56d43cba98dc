//! Log blocks: the entries of one commit to one log, stored as one value at
//! `log ‖ first offset` (FORMAT.md, "Collection logs"). Entries are opaque bytes here.
//!
//! ```text
//! v2 (written)  [0x02][count varint]([shared varint][suffix len varint][suffix])*[crc32 u32]
//! v1 (read)     [0x01][count u32]([len u32][entry])*[crc32 u32]
//! ```
//!
//! Version 2 stores each entry as the number of leading bytes it shares with the previous
//! entry of the block (0 for the first) and the rest of its bytes, so the entries of one
//! entity, or of one commit's timestamp, cost a few bytes each. Both versions end with a
//! CRC-32 over the block's key and every byte before the CRC, so a damaged block or a
//! block moved to another key is refused. Integers are big-endian; a varint is bincode 2's
//! standard varint, minimal.

use crate::error::{Error, Result};
use crate::varint;

/// Version byte of the blocks of FORMAT.md's first layout (read, no longer written).
const BLOCK_V1: u8 = 1;
/// Version byte of prefix-compressed blocks (written).
const BLOCK_V2: u8 = 2;
/// Length of the CRC-32 that ends a block.
const BLOCK_CRC_LEN: usize = 4;
/// The longest start of a block that holds its version and entry count (v2: a one-byte
/// version and a varint of at most nine bytes).
#[cfg(any(test, feature = "postgres"))]
pub(crate) const BLOCK_HEAD_LEN: usize = 10;

fn take_usize(rest: &mut &[u8]) -> Option<usize> {
    usize::try_from(varint::take(rest)?).ok()
}

/// Takes `[shared varint][suffix len varint][suffix]` (a v2 entry) off the front of `rest`.
fn take_v2_entry<'a>(rest: &mut &'a [u8]) -> Option<(usize, &'a [u8])> {
    let shared = take_usize(rest)?;
    let len = take_usize(rest)?;
    let (suffix, after) = rest.split_at_checked(len)?;
    *rest = after;
    Some((shared, suffix))
}

/// Takes `[len u32][entry]` (a v1 entry) off the front of `rest`.
fn take_v1_entry<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, after) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let (entry, after) = after.split_at_checked(len)?;
    *rest = after;
    Some(entry)
}

/// The block (version 2) of `values`, to be stored at `key`.
pub(crate) fn encode_block(key: &[u8], values: &[&[u8]]) -> Vec<u8> {
    let mut block = Vec::with_capacity(
        10 + values.iter().map(|v| v.len().min(16) + 2).sum::<usize>() + BLOCK_CRC_LEN,
    );
    block.push(BLOCK_V2);
    varint::put(&mut block, values.len() as u64);
    let mut previous: &[u8] = &[];
    for value in values {
        let shared = previous
            .iter()
            .zip(value.iter())
            .take_while(|(a, b)| a == b)
            .count();
        let suffix = value.get(shared..).unwrap_or_default();
        varint::put(&mut block, shared as u64);
        varint::put(&mut block, suffix.len() as u64);
        block.extend_from_slice(suffix);
        previous = value;
    }
    let crc = block_crc(key, &block);
    block.extend_from_slice(&crc.to_be_bytes());
    block
}

fn block_crc(key: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    hasher.update(body);
    hasher.finalize()
}

/// The entries of a log block whose structure and CRC [`decode_block`] checked: how many
/// there are ([`len`](Self::len)) and each in offset order ([`visit`](Self::visit)),
/// read without an allocation per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEntries<'a> {
    version: u8,
    count: usize,
    /// The bytes between the entry count and the CRC.
    entries: &'a [u8],
}

impl BlockEntries<'_> {
    /// How many entries the block holds (at least one).
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always `false`: a block holds at least one entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Calls `f` with each entry in offset order until it returns `Ok(false)`; returns
    /// whether every entry was visited. A version-2 entry is rebuilt in one buffer that is
    /// reused for the next, so the slice lives only for the call.
    ///
    /// # Errors
    ///
    /// Any error of `f`, and [`Error::Corrupted`] if the entries do not parse (never for
    /// a view [`decode_block`] returned).
    pub fn visit(&self, f: &mut dyn FnMut(&[u8]) -> Result<bool>) -> Result<bool> {
        let malformed = || Error::Corrupted {
            record: "log block".into(),
            reason: "malformed block".into(),
        };
        let mut rest = self.entries;
        if self.version == BLOCK_V1 {
            for _ in 0..self.count {
                let entry = take_v1_entry(&mut rest).ok_or_else(malformed)?;
                if !f(entry)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        let mut entry = Vec::new();
        for _ in 0..self.count {
            let (shared, suffix) = take_v2_entry(&mut rest).ok_or_else(malformed)?;
            if shared > entry.len() {
                return Err(malformed());
            }
            entry.truncate(shared);
            entry.extend_from_slice(suffix);
            if !f(&entry)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The entries of the log block stored at `key` (version 1 or 2); `None` if it is
/// malformed or fails its CRC. The structure is checked whole here, without allocating.
#[must_use]
pub fn decode_block<'a>(key: &[u8], block: &'a [u8]) -> Option<BlockEntries<'a>> {
    let (body, crc) = block.split_at_checked(block.len().checked_sub(BLOCK_CRC_LEN)?)?;
    let (&version, mut rest) = body.split_first()?;
    let count = match version {
        BLOCK_V1 => {
            let (count, after) = rest.split_first_chunk::<4>()?;
            rest = after;
            usize::try_from(u32::from_be_bytes(*count)).ok()?
        }
        BLOCK_V2 => take_usize(&mut rest)?,
        _ => return None,
    };
    let entries = rest;
    if version == BLOCK_V1 {
        for _ in 0..count {
            take_v1_entry(&mut rest)?;
        }
    } else {
        // The first entry shares nothing; each later one at most the previous one's bytes.
        let mut previous_len = 0usize;
        for _ in 0..count {
            let (shared, suffix) = take_v2_entry(&mut rest)?;
            if shared > previous_len {
                return None;
            }
            previous_len = shared.checked_add(suffix.len())?;
        }
    }
    // The structure is read first, so a fuzzer exercises it whatever the checksum.
    let stored = u32::from_be_bytes(crc.try_into().ok()?);
    (rest.is_empty() && count > 0 && block_crc(key, body) == stored).then_some(BlockEntries {
        version,
        count,
        entries,
    })
}

/// The entry count a block starts with (`head`: its first bytes, at least the version and
/// the count; [`BLOCK_HEAD_LEN`] bytes always suffice). Reads neither the entries nor the
/// CRC: for an engine that fetches only a block's head to find a log's end.
#[cfg(any(test, feature = "postgres"))]
pub(crate) fn head_count(head: &[u8]) -> Option<u64> {
    let (&version, mut rest) = head.split_first()?;
    let count = match version {
        BLOCK_V1 => u64::from(u32::from_be_bytes(*rest.first_chunk::<4>()?)),
        BLOCK_V2 => varint::take(&mut rest)?,
        _ => return None,
    };
    (count > 0).then_some(count)
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
    first
        .checked_add(count.saturating_sub(1))
        .ok_or_else(corrupted)
}

#[cfg(test)]
mod tests;
