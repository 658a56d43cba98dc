use super::*;
use flate2::read::GzDecoder;
use std::io::Read;

fn repetitive(len: usize) -> Vec<u8> {
    (0..len).map(|i| b"account-balance-"[i % 16]).collect()
}

#[test]
fn small_records_are_not_compressed() {
    let config = CompressionConfig::default();
    assert!(compress_if_worth_it(&repetitive(127), &config).is_none());
    assert!(compress_if_worth_it(&repetitive(128), &config).is_some());
}

#[test]
fn incompressible_records_are_kept_as_they_are() {
    // A xorshift stream does not compress by 10%.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    assert!(compress_if_worth_it(&noise, &CompressionConfig::default()).is_none());
}

#[test]
fn output_is_standard_gzip_and_round_trips() -> Result<()> {
    for level in [
        CompressionLevel::Fast,
        CompressionLevel::Balanced,
        CompressionLevel::Best,
    ] {
        let config = CompressionConfig {
            compression_level: level,
            ..Default::default()
        };
        let input = repetitive(10_000);
        let packed = compress_if_worth_it(&input, &config)
            .ok_or_else(|| Error::InvalidArgument("not compressed".into()))?;
        assert!(packed.len() < input.len() / 5);
        let mut via_flate2 = Vec::new();
        GzDecoder::new(packed.as_slice())
            .read_to_end(&mut via_flate2)
            .map_err(|e| Error::Serialization(e.to_string()))?;
        assert_eq!(via_flate2, input);
        assert_eq!(decompress(&packed, input.len())?, input);
    }
    Ok(())
}

#[test]
fn a_gzip_bomb_is_refused_before_allocating() -> Result<()> {
    let input = vec![0u8; 1 << 20];
    let packed = compress_if_worth_it(&input, &CompressionConfig::default())
        .ok_or_else(|| Error::InvalidArgument("not compressed".into()))?;
    assert!(decompress(&packed, 1024).is_err());
    Ok(())
}

#[test]
fn a_record_declaring_more_than_its_stream_can_hold_starts_small() {
    // 40 deflate bytes expand to at most ~41 KiB, whatever the trailer says.
    assert!(initial_capacity(40, 256 << 20) <= 41 * MAX_DEFLATE_RATIO + 1);
    // An honest record gets its declared length (and the slack byte) at once.
    assert_eq!(initial_capacity(40, 1000), 1001);
}

#[test]
fn the_output_grows_as_the_stream_produces_it() -> Result<()> {
    let input = repetitive(100_000);
    let packed = compress_if_worth_it(&input, &CompressionConfig::default())
        .ok_or_else(|| Error::InvalidArgument("not compressed".into()))?;
    let deflated = &packed[GZIP_HEADER.len()..packed.len() - GZIP_TRAILER_LEN];
    let mut decompressor = Decompress::new(false);
    // Starting from one byte, the buffer doubles until the stream ends.
    assert_eq!(inflate(&mut decompressor, deflated, input.len(), 1)?, input);
    // A stream longer than declared stops at the declared length plus one (a stream of
    // exactly one more byte ends there, and `decompress` compares the lengths).
    decompressor.reset(false);
    let longer = inflate(&mut decompressor, deflated, input.len() - 2, 1).map(|out| out.len());
    assert!(
        matches!(&longer, Err(Error::Serialization(m)) if m.contains("longer")),
        "{longer:?}"
    );
    // A truncated stream is refused too.
    decompressor.reset(false);
    let truncated = inflate(
        &mut decompressor,
        &deflated[..deflated.len() / 2],
        input.len(),
        1,
    )
    .map(|out| out.len());
    assert!(
        matches!(&truncated, Err(Error::Serialization(m)) if m.contains("does not end")),
        "{truncated:?}"
    );
    Ok(())
}

#[test]
fn damaged_streams_are_errors() -> Result<()> {
    let input = repetitive(4096);
    let packed = compress_if_worth_it(&input, &CompressionConfig::default())
        .ok_or_else(|| Error::InvalidArgument("not compressed".into()))?;
    for i in 0..packed.len() {
        let mut bad = packed.clone();
        if let Some(b) = bad.get_mut(i) {
            *b ^= 0x40;
        }
        // Any flipped byte is an error or (header bytes gzip ignores) the same data.
        if let Ok(out) = decompress(&bad, 1 << 20) {
            assert_eq!(out, input, "byte {i}");
        }
    }
    assert!(decompress(&packed[..packed.len() - 1], 1 << 20).is_err());
    assert!(decompress(&[], 1 << 20).is_err());
    Ok(())
}

#[test]
fn ratio_threshold_is_honoured() {
    let input = repetitive(1000);
    let strict = CompressionConfig {
        min_ratio_threshold: 0.999,
        ..Default::default()
    };
    assert!(compress_if_worth_it(&input, &strict).is_none());
}

#[test]
fn stats_count_savings() {
    let mut stats = CompressionStats::default();
    stats.record(1000, 200, true);
    stats.record(50, 50, false);
    assert_eq!(stats.bytes_saved(), 800);
    assert_eq!(stats.compressed_events, 1);
    assert_eq!(stats.uncompressed_events, 1);
    assert!((stats.compression_ratio() - 800.0 / 1050.0).abs() < 1e-9);
}
