//! The bytes of the write-ahead log (FORMAT.md, "The write-ahead log"): the header, a
//! record and its body, and the scan of an epoch that tells a torn end from damage. The
//! file around them is `wal.rs`'s.

use super::WAL_FILE;
use crate::error::{Error, Result};

pub(super) const MAGIC: &[u8; 8] = b"RUSHWAL\0";
pub(super) const VERSION: u32 = 1;
/// Header and record alignment.
pub(super) const SECTOR: u64 = 512;
/// Bytes of a record before its body.
pub(super) const RECORD_HEAD: usize = 24;

/// One write of a commit, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoggedOp<'a> {
    Put(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
}

/// Each record's commit number and where its body lies in the file's bytes.
pub(super) type Records = Vec<(u64, std::ops::Range<usize>)>;

pub(super) fn damaged(what: &str, reason: String) -> Error {
    Error::Corrupted {
        record: format!("{what} of the write-ahead log {WAL_FILE}"),
        reason,
    }
}

pub(super) fn encode_header(epoch: u64, base: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(SECTOR as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_be_bytes());
    header.extend_from_slice(&epoch.to_be_bytes());
    header.extend_from_slice(&base.to_be_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_be_bytes());
    header.resize(SECTOR as usize, 0);
    header
}

/// The header's epoch and base.
pub(super) fn decode_header(bytes: &[u8]) -> std::result::Result<(u64, u64), String> {
    let head = bytes
        .get(..32)
        .ok_or_else(|| format!("{} bytes, shorter than a header", bytes.len()))?;
    let (body, crc) = head.split_at(28);
    if crc32fast::hash(body) != u32::from_be_bytes(array(crc)?) {
        return Err("its checksum does not match (damaged)".into());
    }
    let (magic, rest) = body.split_at(8);
    if magic != MAGIC {
        return Err("it does not start with RUSHWAL".into());
    }
    let (version, rest) = rest.split_at(4);
    let version = u32::from_be_bytes(array(version)?);
    if version != VERSION {
        return Err(format!("unknown version {version}"));
    }
    let (epoch, base) = rest.split_at(8);
    Ok((
        u64::from_be_bytes(array(epoch)?),
        u64::from_be_bytes(array(base)?),
    ))
}

fn array<const N: usize>(bytes: &[u8]) -> std::result::Result<[u8; N], String> {
    bytes.try_into().map_err(|_| "short".to_owned())
}

/// Encodes one record, padded to [`SECTOR`], into `out`.
pub(super) fn encode_record(
    out: &mut Vec<u8>,
    epoch: u64,
    number: u64,
    ops: &[LoggedOp<'_>],
) -> Result<()> {
    out.clear();
    out.extend_from_slice(&[0; RECORD_HEAD]);
    let too_large = || Error::InvalidArgument("write-ahead log: a commit larger than 4 GiB".into());
    out.extend_from_slice(
        &u32::try_from(ops.len())
            .map_err(|_| too_large())?
            .to_be_bytes(),
    );
    for op in ops {
        let (kind, key, value) = match op {
            LoggedOp::Put(key, value) => (0u8, key, Some(value)),
            LoggedOp::Delete(key) => (1u8, key, None),
        };
        out.push(kind);
        out.extend_from_slice(
            &u32::try_from(key.len())
                .map_err(|_| too_large())?
                .to_be_bytes(),
        );
        out.extend_from_slice(key);
        if let Some(value) = value {
            out.extend_from_slice(
                &u32::try_from(value.len())
                    .map_err(|_| too_large())?
                    .to_be_bytes(),
            );
            out.extend_from_slice(value);
        }
    }
    // A body's length is a `u32`: a group of 4096 writes of the largest events stays
    // below it.
    let body_len = u32::try_from(out.len().saturating_sub(RECORD_HEAD)).map_err(|_| too_large())?;
    let mut head = [0u8; RECORD_HEAD];
    head[..4].copy_from_slice(&body_len.to_be_bytes());
    head[8..16].copy_from_slice(&epoch.to_be_bytes());
    head[16..24].copy_from_slice(&number.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[..4]);
    crc.update(&head[8..]);
    crc.update(out.get(RECORD_HEAD..).unwrap_or_default());
    head[4..8].copy_from_slice(&crc.finalize().to_be_bytes());
    if let Some(start) = out.get_mut(..RECORD_HEAD) {
        start.copy_from_slice(&head);
    }
    let padded = out.len().div_ceil(SECTOR as usize) * SECTOR as usize;
    out.resize(padded, 0);
    Ok(())
}

/// CRC-32 of a record's length, epoch, number and body (everything but the CRC itself).
fn record_crc(record: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(record.get(..4).unwrap_or_default());
    hasher.update(record.get(8..).unwrap_or_default());
    hasher.finalize()
}

/// The record at `at`, if one of `epoch` checks out there: its number, body range and
/// the offset after it.
pub(super) fn record_at(
    bytes: &[u8],
    at: usize,
    epoch: u64,
) -> Option<(u64, std::ops::Range<usize>, usize)> {
    let head = bytes.get(at..at.checked_add(RECORD_HEAD)?)?;
    let body_len = u32::from_be_bytes(head.get(..4)?.try_into().ok()?);
    let crc = u32::from_be_bytes(head.get(4..8)?.try_into().ok()?);
    let record_epoch = u64::from_be_bytes(head.get(8..16)?.try_into().ok()?);
    let number = u64::from_be_bytes(head.get(16..24)?.try_into().ok()?);
    let body_start = at.checked_add(RECORD_HEAD)?;
    let body_end = body_start.checked_add(usize::try_from(body_len).ok()?)?;
    let record = bytes.get(at..body_end)?;
    if record_epoch != epoch || record_crc(record) != crc {
        return None;
    }
    let next = body_end
        .div_ceil(SECTOR as usize)
        .checked_mul(SECTOR as usize)?;
    Some((number, body_start..body_end, next))
}

/// The valid records of `epoch` from the first sector after the header, and where the
/// next one goes. A damaged record with a valid later one of the epoch is
/// [`Error::Corrupted`].
pub(super) fn scan(bytes: &[u8], epoch: u64, base: u64) -> Result<(Records, u64)> {
    let mut records = Vec::new();
    let mut at = SECTOR as usize;
    let mut expected = base.saturating_add(1);
    while let Some((number, body, next)) = record_at(bytes, at, epoch) {
        if number != expected {
            break;
        }
        records.push((number, body));
        expected = expected.saturating_add(1);
        at = next;
    }
    // The end of the log, or damage: look for a later record of the epoch.
    let mut probe = at.saturating_add(SECTOR as usize);
    while probe < bytes.len() {
        if let Some((number, _, _)) = record_at(bytes, probe, epoch)
            && number >= expected
        {
            return Err(damaged(
                &format!("the record at byte {at}"),
                format!(
                    "it does not check out, but commit {number} follows it at byte {probe}: \
                     commit {expected} was acknowledged and is damaged; nothing was changed"
                ),
            ));
        }
        probe = probe.saturating_add(SECTOR as usize);
    }
    Ok((records, at as u64))
}

/// Decodes a record's body into `ops` (cleared first).
pub(super) fn decode_body<'a>(body: &'a [u8], ops: &mut Vec<LoggedOp<'a>>) -> Result<()> {
    ops.clear();
    let bad = || damaged("a record's body", "it does not decode".into());
    let mut rest = body;
    let mut take = |n: usize| -> Result<&'a [u8]> {
        if rest.len() < n {
            return Err(bad());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?);
    for _ in 0..count {
        let kind = take(1)?.first().copied().ok_or_else(bad)?;
        let key_len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?);
        let key = take(usize::try_from(key_len).map_err(|_| bad())?)?;
        match kind {
            0 => {
                let value_len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?);
                let value = take(usize::try_from(value_len).map_err(|_| bad())?)?;
                ops.push(LoggedOp::Put(key, value));
            }
            1 => ops.push(LoggedOp::Delete(key)),
            _ => return Err(bad()),
        }
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(())
}
