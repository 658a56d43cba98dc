//! Adaptive gzip: a record is compressed only when it is large enough and the saving is
//! worth it. The gzip framing is written here around a reused raw-deflate state, because
//! a fresh encoder per record costs 5-10x more than the compression itself.

use crate::error::{Error, Result};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

/// How hard gzip works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionLevel {
    /// Level 1: fastest.
    Fast,
    /// Level 6: zlib's default trade-off.
    #[default]
    Balanced,
    /// Level 9: smallest output.
    Best,
}

impl CompressionLevel {
    fn level(self) -> u32 {
        match self {
            CompressionLevel::Fast => 1,
            CompressionLevel::Balanced => 6,
            CompressionLevel::Best => 9,
        }
    }

    fn slot(self) -> usize {
        match self {
            CompressionLevel::Fast => 0,
            CompressionLevel::Balanced => 1,
            CompressionLevel::Best => 2,
        }
    }
}

/// When a record is worth compressing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompressionConfig {
    /// Records shorter than this many bytes are stored as they are (default 128).
    pub min_size_threshold: usize,
    /// The smallest fraction of bytes compression must save to be kept (default 0.10).
    pub min_ratio_threshold: f64,
    /// Speed against size.
    pub compression_level: CompressionLevel,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        Self {
            min_size_threshold: 128,
            min_ratio_threshold: 0.10,
            compression_level: CompressionLevel::Balanced,
        }
    }
}

impl CompressionConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.min_ratio_threshold) {
            return Err(Error::InvalidArgument(format!(
                "min_ratio_threshold must be in [0, 1), got {}",
                self.min_ratio_threshold
            )));
        }
        Ok(())
    }
}

/// What compression did to the records written through one store handle
/// (events and snapshots).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressionStats {
    /// Serialized bytes before compression.
    pub original_bytes: u64,
    /// Bytes after the compression step (compressed or kept as they were).
    pub compressed_bytes: u64,
    /// Records stored compressed.
    pub compressed_events: u64,
    /// Records stored uncompressed (too small, not worth it, or compression off).
    pub uncompressed_events: u64,
}

impl CompressionStats {
    /// Bytes that compression saved.
    pub fn bytes_saved(&self) -> u64 {
        self.original_bytes.saturating_sub(self.compressed_bytes)
    }

    /// The fraction of bytes saved, from 0.0 (nothing) towards 1.0.
    #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
    pub fn compression_ratio(&self) -> f64 {
        if self.original_bytes == 0 {
            0.0
        } else {
            self.bytes_saved() as f64 / self.original_bytes as f64
        }
    }

    /// Adds what `other` counted.
    pub(crate) fn add(&mut self, other: &CompressionStats) {
        self.original_bytes += other.original_bytes;
        self.compressed_bytes += other.compressed_bytes;
        self.compressed_events += other.compressed_events;
        self.uncompressed_events += other.uncompressed_events;
    }

    pub(crate) fn record(&mut self, original: usize, stored: usize, compressed: bool) {
        self.original_bytes += original as u64;
        self.compressed_bytes += stored as u64;
        if compressed {
            self.compressed_events += 1;
        } else {
            self.uncompressed_events += 1;
        }
    }
}

/// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
const GZIP_TRAILER_LEN: usize = 8;
/// Header and trailer that gzip adds around the deflate stream.
pub(crate) const GZIP_OVERHEAD: usize = GZIP_HEADER.len() + GZIP_TRAILER_LEN;

thread_local! {
    static COMPRESSORS: RefCell<[Option<Compress>; 3]> = const { RefCell::new([None, None, None]) };
    static DECOMPRESSOR: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// Gzips `input` if that saves at least `config.min_ratio_threshold` and `input` is at
/// least `config.min_size_threshold` bytes; `None` means "store it as it is".
pub(crate) fn compress_if_worth_it(input: &[u8], config: &CompressionConfig) -> Option<Vec<u8>> {
    if input.len() < config.min_size_threshold {
        return None;
    }
    // Anything larger than this budget is not worth keeping, so the encoder may stop there.
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a size budget; rounding is harmless"
    )]
    let budget = (input.len() as f64 * (1.0 - config.min_ratio_threshold)) as usize;
    let deflate_budget = budget.checked_sub(GZIP_OVERHEAD)?;
    let level = config.compression_level;
    let mut out = Vec::with_capacity(budget);
    out.extend_from_slice(&GZIP_HEADER);
    let finished = COMPRESSORS.with(|cell| {
        let mut slots = cell.borrow_mut();
        let slot = slots.get_mut(level.slot())?;
        let compressor =
            slot.get_or_insert_with(|| Compress::new(Compression::new(level.level()), false));
        compressor.reset();
        let mut deflated = Vec::with_capacity(deflate_budget);
        // compress_vec writes only into spare capacity: running out means "not worth it".
        let status = compressor
            .compress_vec(input, &mut deflated, FlushCompress::Finish)
            .ok()?;
        (status == Status::StreamEnd).then_some(deflated)
    })?;
    out.extend_from_slice(&finished);
    out.extend_from_slice(&crc32fast::hash(input).to_le_bytes());
    out.extend_from_slice(&u32::try_from(input.len()).ok()?.to_le_bytes());
    (out.len() <= budget).then_some(out)
}

/// Gunzips a record written by [`compress_if_worth_it`], refusing output above `max_len`
/// (a gzip bomb is an error, not an allocation) or other than the trailer's length and
/// CRC. Allocates no more than the compressed bytes can expand to, whatever the trailer
/// declares.
pub(crate) fn decompress(input: &[u8], max_len: usize) -> Result<Vec<u8>> {
    let bad = |reason: &str| Error::Serialization(format!("gzip: {reason}"));
    let body_end = input
        .len()
        .checked_sub(GZIP_TRAILER_LEN)
        .filter(|end| *end >= GZIP_HEADER.len())
        .ok_or_else(|| bad("record too short"))?;
    let (header, rest) = input.split_at(GZIP_HEADER.len());
    if header.get(..4) != GZIP_HEADER.get(..4) {
        return Err(bad("not a gzip stream written by rush"));
    }
    let deflated = rest
        .get(..body_end - GZIP_HEADER.len())
        .ok_or_else(|| bad("record too short"))?;
    let trailer = input
        .get(body_end..)
        .ok_or_else(|| bad("record too short"))?;
    let (crc_bytes, len_bytes) = trailer.split_at(4);
    let expected_crc = u32::from_le_bytes(crc_bytes.try_into().map_err(|_| bad("trailer"))?);
    let expected_len =
        u32::from_le_bytes(len_bytes.try_into().map_err(|_| bad("trailer"))?) as usize;
    if expected_len > max_len {
        return Err(bad(&format!(
            "declares {expected_len} bytes, the limit is {max_len}"
        )));
    }
    let output = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = slot.get_or_insert_with(|| Decompress::new(false));
        decompressor.reset(false);
        inflate(
            decompressor,
            deflated,
            expected_len,
            initial_capacity(deflated.len(), expected_len),
        )
    })?;
    if output.len() != expected_len || crc32fast::hash(&output) != expected_crc {
        return Err(bad("length or checksum does not match the trailer"));
    }
    Ok(output)
}

/// The most bytes one byte of a deflate stream can expand to: a 258-byte match coded in
/// two bits (a one-bit length code and a one-bit distance code).
const MAX_DEFLATE_RATIO: usize = 1032;

/// Where the output buffer starts: what the record declares, unless the compressed bytes
/// cannot expand that far (a lying trailer), plus one byte of slack that tells a stream
/// longer than it declares. A record of 40 bytes thus never costs 256 MiB.
fn initial_capacity(deflated_len: usize, expected_len: usize) -> usize {
    let reachable = deflated_len
        .saturating_add(1)
        .saturating_mul(MAX_DEFLATE_RATIO);
    expected_len.min(reachable).saturating_add(1)
}

/// Inflates `deflated`, which must produce exactly `expected_len` bytes, into a buffer
/// that starts at `capacity` and grows only once the inflater has filled it, up to
/// `expected_len + 1`: memory follows the output actually produced, not the trailer.
fn inflate(
    decompressor: &mut Decompress,
    deflated: &[u8],
    expected_len: usize,
    capacity: usize,
) -> Result<Vec<u8>> {
    let bad = |reason: &str| Error::Serialization(format!("gzip: {reason}"));
    let limit = expected_len.saturating_add(1);
    let mut output = Vec::with_capacity(capacity.clamp(1, limit));
    loop {
        let consumed = usize::try_from(decompressor.total_in()).unwrap_or(usize::MAX);
        let rest = deflated.get(consumed..).unwrap_or_default();
        let status = decompressor
            .decompress_vec(rest, &mut output, FlushDecompress::Finish)
            .map_err(|e| bad(&e.to_string()))?;
        if status == Status::StreamEnd {
            return Ok(output);
        }
        if output.len() < output.capacity() {
            // Room was left, so the inflater stopped for want of input.
            return Err(bad("stream does not end where the record does"));
        }
        if output.len() >= limit {
            return Err(bad("stream is longer than the record declares"));
        }
        // Full and still within the declared length: give it as much again.
        let grow = output.len().min(limit.saturating_sub(output.len())).max(1);
        output.reserve_exact(grow);
    }
}

#[cfg(test)]
mod tests;
