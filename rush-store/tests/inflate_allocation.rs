//! A compressed record's trailer declares how long the inflated body is; a record may lie.
//! Inflating allocates what the compressed bytes can really expand to, never what the
//! trailer claims: a record of a few dozen bytes that declares 256 MiB is refused without
//! a 256 MiB allocation.
//!
//! One test in this file: the allocator's peak is process-wide.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use flate2::{Compress, Compression, FlushCompress};
use peak_alloc::PeakAlloc;
use rush_store::MAX_SNAPSHOT_SIZE;
use rush_store::fuzzing::inflate;

/// Counts current and peak heap bytes. The workspace forbids `unsafe_code`, so the
/// `GlobalAlloc` impl comes from `peak_alloc`.
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// A gzip record as rush writes it (header, raw deflate, CRC-32, length) whose trailer
/// says the body is `declared` bytes long.
fn gzip_declaring(body: &[u8], declared: u32) -> Vec<u8> {
    let mut deflated = Vec::with_capacity(body.len() + 64);
    Compress::new(Compression::default(), false)
        .compress_vec(body, &mut deflated, FlushCompress::Finish)
        .unwrap();
    let mut record = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    record.extend_from_slice(&deflated);
    record.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    record.extend_from_slice(&declared.to_le_bytes());
    record
}

#[test]
fn a_tiny_record_declaring_256_mib_is_refused_without_a_large_allocation() {
    let declared = u32::try_from(MAX_SNAPSHOT_SIZE).unwrap();
    let record = gzip_declaring(b"a small snapshot of a few bytes", declared);
    assert!(record.len() < 64, "{} bytes", record.len());

    let before = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let inflated = inflate(&record, MAX_SNAPSHOT_SIZE);
    let peak = ALLOC.peak_usage().saturating_sub(before);

    assert!(inflated.is_err(), "{inflated:?}");
    // What 40-odd deflate bytes can expand to (about 1032:1), plus the inflater's state.
    assert!(
        peak < 1024 * 1024,
        "inflating a {}-byte record allocated {peak} bytes",
        record.len()
    );

    // The same shape with an honest trailer still inflates.
    let honest = gzip_declaring(&[7u8; 100_000], 100_000);
    assert_eq!(
        inflate(&honest, MAX_SNAPSHOT_SIZE).unwrap(),
        vec![7u8; 100_000]
    );
}
