use super::*;

const KEY: &[u8] = b"log\0\0\0\0\0\0\0\x01";

/// Every entry of a decoded block, copied.
fn entries_of(key: &[u8], block: &[u8]) -> Option<Vec<Vec<u8>>> {
    let entries = decode_block(key, block)?;
    let mut out = Vec::new();
    let all = entries
        .visit(&mut |entry| {
            out.push(entry.to_vec());
            Ok(true)
        })
        .unwrap();
    assert!(all);
    assert_eq!(out.len(), entries.len());
    Some(out)
}

/// `body` with the CRC of `KEY ‖ body` after it: a block whose only fault is its structure.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut block = body.to_vec();
    block.extend_from_slice(&block_crc(KEY, body).to_be_bytes());
    block
}

#[test]
fn v2_blocks_round_trip() {
    let cases: [&[&[u8]]; 6] = [
        &[b"x"],
        &[b"", b"", b"a"],
        // Different lengths, an entry that is a prefix of the next, an entry equal to the
        // previous one (an empty suffix), one that shares nothing.
        &[b"abc", b"abcdef", b"abcdef", b"ab", b"abz", b"q", b""],
        &[&[7; 300], &[7; 600], &[7; 299]],
        &[b"same", b"same", b"same"],
        &[b"abcdef", b"abc"],
    ];
    for values in cases {
        let block = encode_block(KEY, values);
        assert_eq!(block[0], BLOCK_V2);
        let decoded = entries_of(KEY, &block).unwrap();
        assert_eq!(decoded, values, "{values:?}");
        assert_eq!(head_count(&block), Some(values.len() as u64));
    }
    let many: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| format!("entry-{i}-{}", "x".repeat((i % 7) as usize)).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
    let block = encode_block(KEY, &refs);
    assert_eq!(entries_of(KEY, &block).unwrap(), many);
    // The count's varint takes three bytes here; the head still holds it.
    assert_eq!(head_count(&block[..BLOCK_HEAD_LEN]), Some(1000));
    assert_eq!(block_end(b"log", KEY, &block).unwrap(), 1000);
}

#[test]
fn the_shared_prefix_is_stored_once() {
    let block = encode_block(KEY, &[b"abcdef", b"abcdeg", b"abcdeg"]);
    let expected = sealed(&[
        2, 3, // version, count
        0, 6, b'a', b'b', b'c', b'd', b'e', b'f', // shares nothing
        5, 1, b'g', // shares "abcde"
        6, 0, // shares all six bytes
    ]);
    assert_eq!(block, expected);
}

#[test]
fn visiting_stops_when_asked() {
    let block = encode_block(KEY, &[b"a", b"ab", b"abc"]);
    let entries = decode_block(KEY, &block).unwrap();
    let mut seen = Vec::new();
    let all = entries
        .visit(&mut |entry| {
            seen.push(entry.to_vec());
            Ok(seen.len() < 2)
        })
        .unwrap();
    assert!(!all);
    assert_eq!(seen, [b"a".to_vec(), b"ab".to_vec()]);
    let failed = entries.visit(&mut |_| Err(Error::InvalidArgument("stop".into())));
    assert!(matches!(failed, Err(Error::InvalidArgument(_))));
}

#[test]
fn every_flipped_bit_of_a_v2_block_and_a_moved_block_are_refused() {
    let good = encode_block(KEY, &[b"abcdef", b"abcxyz", b"", b"q"]);
    assert!(decode_block(KEY, &good).is_some());
    assert!(decode_block(KEY, &good[..good.len() - 1]).is_none());
    let mut longer = good.clone();
    longer.push(0);
    assert!(decode_block(KEY, &longer).is_none());
    for at in 0..good.len() * 8 {
        let mut flipped = good.clone();
        flipped[at / 8] ^= 1 << (at % 8);
        assert!(decode_block(KEY, &flipped).is_none(), "bit {at}");
    }
    assert!(decode_block(b"log\0\0\0\0\0\0\0\x02", &good).is_none());
}

#[test]
fn malformed_v2_structures_are_refused_whatever_their_crc() {
    // Each body is sealed with a valid CRC, so only its structure can refuse it.
    assert!(entries_of(KEY, &sealed(&[2, 2, 0, 2, b'a', b'b', 1, 1, b'c'])).is_some());
    let refused: [(&str, &[u8]); 10] = [
        ("count 0", &[2, 0]),
        ("the first entry shares bytes", &[2, 1, 1, 1, b'a']),
        ("shared > previous length", &[2, 2, 0, 1, b'a', 2, 0]),
        ("trailing bytes", &[2, 1, 0, 1, b'a', 0]),
        ("fewer entries than counted", &[2, 2, 0, 1, b'a']),
        ("a suffix past the end", &[2, 1, 0, 5, b'a']),
        ("a count that is not minimal", &[2, 251, 1, 0, 0, 1, b'a']),
        ("a length that is not minimal", &[2, 1, 0, 251, 1, 0, b'a']),
        ("a varint marker 254", &[2, 1, 0, 254, b'a']),
        ("another version", &[3, 1, 0, 1, b'a']),
    ];
    for (what, body) in refused {
        assert!(decode_block(KEY, &sealed(body)).is_none(), "{what}");
    }
    assert!(
        decode_block(KEY, &[2, 0, 0, 0]).is_none(),
        "shorter than a CRC"
    );
    assert!(decode_block(KEY, &[]).is_none(), "empty");
    assert_eq!(head_count(&[2, 0]), None);
    assert_eq!(head_count(&[2, 251, 1]), None);
}

#[test]
fn v1_blocks_still_decode() {
    // [0x01][count u32]([len u32][entry])*[crc32], as version-2 builds wrote them.
    let body = [1, 0, 0, 0, 2, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 1, b'c'];
    let block = sealed(&body);
    assert_eq!(
        entries_of(KEY, &block).unwrap(),
        [b"ab".to_vec(), b"c".to_vec()]
    );
    assert_eq!(head_count(&block), Some(2));
    assert_eq!(block_end(b"log", KEY, &block).unwrap(), 2);
    for at in 0..block.len() * 8 {
        let mut flipped = block.clone();
        flipped[at / 8] ^= 1 << (at % 8);
        assert!(decode_block(KEY, &flipped).is_none(), "bit {at}");
    }
    assert!(decode_block(b"log\0\0\0\0\0\0\0\x02", &block).is_none());
    assert!(decode_block(KEY, &block[..block.len() - 1]).is_none());
    let mut longer = block.clone();
    longer.push(0);
    assert!(decode_block(KEY, &longer).is_none());
    assert!(
        decode_block(KEY, &sealed(&[1, 0, 0, 0, 0])).is_none(),
        "count 0"
    );
    assert!(decode_block(KEY, &sealed(&[1, 0, 0, 0, 1, 0, 0, 0, 9, 1])).is_none());
    assert!(decode_block(KEY, &[9, 0, 0, 0, 1, 0, 0, 0, 0]).is_none());
}

#[test]
fn block_end_needs_a_block_key_of_the_log() {
    let block = encode_block(KEY, &[b"a", b"b", b"c"]);
    assert_eq!(block_end(b"log", KEY, &block).unwrap(), 3);
    assert!(block_end(b"other", KEY, &block).is_err());
    assert!(block_end(b"log", KEY, &block[1..]).is_err());
    assert_eq!(offset_of(b"log", KEY), Some(1));
    assert_eq!(offset_of(b"log", b"log\0"), None);
}
