use super::*;
use crate::crypto::EncryptionKey;
use crate::metadata::EventMetadata;

const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn codecs() -> Result<Vec<Codec>> {
    let key = EncryptionKey::new(KEY)?;
    let mut out = Vec::new();
    for encrypted in [false, true] {
        for compressed in [false, true] {
            out.push(Codec {
                keyring: Keyring::from(encrypted.then(|| key.clone())),
                compression: compressed.then(CompressionConfig::default),
                ..Codec::default()
            });
        }
    }
    Ok(out)
}

fn describe() -> String {
    "test record".into()
}

#[test]
fn every_combination_round_trips() -> Result<()> {
    let values = [String::new(), "short".into(), "long ".repeat(200)];
    for codec in codecs()? {
        for value in &values {
            let encoded = codec.encode(b"id", 42, value, MAX_EVENT_SIZE)?;
            let decoded: Decoded<String> =
                codec.decode(b"id", &encoded.bytes, MAX_EVENT_SIZE, &describe)?;
            assert_eq!(&decoded.value, value);
            assert_eq!(decoded.timestamp_micros, 42);
        }
    }
    Ok(())
}

#[test]
fn compression_is_used_only_when_it_pays() -> Result<()> {
    let codec = Codec {
        keyring: Keyring::default(),
        compression: Some(CompressionConfig::default()),
        ..Codec::default()
    };
    assert!(
        codec
            .encode(b"id", 0, &"long ".repeat(200), MAX_EVENT_SIZE)?
            .compressed
    );
    assert!(!codec.encode(b"id", 0, &"short", MAX_EVENT_SIZE)?.compressed);
    Ok(())
}

#[test]
fn a_record_moved_to_another_identity_fails_its_check() -> Result<()> {
    for codec in codecs()? {
        let encoded = codec.encode(b"entity-a/1", 0, &"payload", MAX_EVENT_SIZE)?;
        let moved =
            codec.decode::<String>(b"entity-a/2", &encoded.bytes, MAX_EVENT_SIZE, &describe);
        assert!(matches!(moved, Err(Error::Corrupted { .. })), "{moved:?}");
    }
    Ok(())
}

#[test]
fn any_flipped_byte_is_an_error_never_a_wrong_value() -> Result<()> {
    for codec in codecs()? {
        let encoded = codec.encode(b"id", 7, &"x".repeat(300), MAX_EVENT_SIZE)?;
        for i in 0..encoded.bytes.len() {
            let mut bad = encoded.bytes.clone();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 0x01;
            }
            let result = codec.decode::<String>(b"id", &bad, MAX_EVENT_SIZE, &describe);
            assert!(result.is_err(), "byte {i} flipped went unnoticed");
        }
        let mut longer = encoded.bytes.clone();
        longer.push(0);
        assert!(matches!(
            codec.decode::<String>(b"id", &longer, MAX_EVENT_SIZE, &describe),
            Err(Error::Corrupted { .. })
        ));
        let torn = &encoded.bytes[..encoded.bytes.len() / 2];
        assert!(matches!(
            codec.decode::<String>(b"id", torn, MAX_EVENT_SIZE, &describe),
            Err(Error::Corrupted { .. })
        ));
    }
    Ok(())
}

#[test]
fn wrong_or_missing_key_is_a_decryption_error() -> Result<()> {
    let sealed = Codec {
        keyring: Keyring::from(Some(EncryptionKey::new(KEY)?)),
        compression: None,
        ..Codec::default()
    }
    .encode(b"id", 0, &"secret", MAX_EVENT_SIZE)?;
    let wrong = Codec {
        keyring: Keyring::from(Some(EncryptionKey::new(&[9u8; 32])?)),
        compression: None,
        ..Codec::default()
    };
    assert!(matches!(
        wrong.decode::<String>(b"id", &sealed.bytes, MAX_EVENT_SIZE, &describe),
        Err(Error::Decryption { .. })
    ));
    let none = Codec {
        keyring: Keyring::default(),
        compression: None,
        ..Codec::default()
    };
    assert!(matches!(
        none.decode::<String>(b"id", &sealed.bytes, MAX_EVENT_SIZE, &describe),
        Err(Error::Decryption { .. })
    ));
    Ok(())
}

#[test]
fn a_keyed_store_refuses_plain_records_but_rotation_reseals_them() -> Result<()> {
    let plain = Codec {
        keyring: Keyring::default(),
        compression: None,
        ..Codec::default()
    }
    .encode(b"id", 5, &"old", MAX_EVENT_SIZE)?;
    let keyed = Codec {
        keyring: Keyring::from(Some(EncryptionKey::new(KEY)?)),
        compression: None,
        ..Codec::default()
    };
    assert!(matches!(
        keyed.decode::<String>(b"id", &plain.bytes, MAX_EVENT_SIZE, &describe),
        Err(Error::Decryption { .. })
    ));
    let resealed = keyed
        .reseal(b"id", &plain.bytes, &describe)?
        .ok_or_else(|| Error::InvalidArgument("not resealed".into()))?;
    let decoded: Decoded<String> = keyed.decode(b"id", &resealed, MAX_EVENT_SIZE, &describe)?;
    assert_eq!(
        (decoded.value.as_str(), decoded.timestamp_micros),
        ("old", 5)
    );
    assert!(keyed.reseal(b"id", &resealed, &describe)?.is_none());
    Ok(())
}

#[test]
fn oversized_values_are_refused_with_a_clear_error() -> Result<()> {
    let codec = Codec {
        keyring: Keyring::default(),
        compression: None,
        ..Codec::default()
    };
    let result = codec.encode(b"id", 0, &vec![0u8; 2000], 1000);
    assert!(matches!(result, Err(Error::InvalidArgument(_))));
    Ok(())
}

#[test]
fn unknown_versions_and_flags_are_corruption() -> Result<()> {
    let codec = Codec {
        keyring: Keyring::default(),
        compression: None,
        ..Codec::default()
    };
    let encoded = codec.encode(b"id", 0, &"v", MAX_EVENT_SIZE)?;
    let mut future = encoded.bytes.clone();
    future[0] = 4;
    let err = codec.decode::<String>(b"id", &future, MAX_EVENT_SIZE, &describe);
    assert!(
        matches!(&err, Err(Error::Corrupted { reason, .. }) if reason.contains("version 4")),
        "{err:?}"
    );
    // A version-3 header with unknown flags.
    let event = codec.encode_event(b"id", 0, &RecordMeta::legacy(), &"v")?;
    let mut flagged = event.bytes.clone();
    flagged[1] |= 0b100;
    let err =
        codec.decode_event_with::<String>(b"id", &flagged, &describe, &mut Scratch::default());
    assert!(
        matches!(&err, Err(Error::Corrupted { reason, .. }) if reason.contains("unknown flags")),
        "{err:?}"
    );
    Ok(())
}

/// A format-v2 event as builds before version 3 wrote it: `[meta len u32][bincode meta]`
/// in front of the payload.
fn encode_event_v2(codec: &Codec, meta: &RecordMeta, value: &String) -> Result<Vec<u8>> {
    let meta_bytes = serialize(meta)?;
    let mut body = (meta_bytes.len() as u32).to_be_bytes().to_vec();
    body.extend_from_slice(&meta_bytes);
    body.extend_from_slice(&serialize(value)?);
    Ok(codec
        .seal_serialized(b"id", VERSION_WITH_META, 7, &body)?
        .bytes)
}

/// `record` with its trailing CRC made good again after a change.
fn with_good_crc(mut record: Vec<u8>) -> Vec<u8> {
    let crc_at = record.len() - 4;
    let mut crc = crc32fast::Hasher::new();
    crc.update(b"id");
    crc.update(&record[..crc_at]);
    record[crc_at..].copy_from_slice(&crc.finalize().to_be_bytes());
    record
}

fn test_meta() -> RecordMeta {
    RecordMeta {
        event_type: "Renamed".into(),
        schema_version: 1,
        tags: vec!["a".into(), "b".repeat(300)],
        metadata: EventMetadata {
            correlation_id: Some("c".into()),
            causation_id: None,
            user_id: Some("u".into()),
            tenant_id: None,
        },
    }
}

/// Replay's lean decode gives the value the full decode gives, for events with tags and
/// metadata (v3 and v2) and for events written before the meta block (v1), in every
/// combination of compression and encryption; and both read the same meta from v2 and v3.
#[test]
fn the_value_alone_is_the_value_of_the_full_decode() -> Result<()> {
    let meta = test_meta();
    let values = [String::new(), "short".into(), "long ".repeat(200)];
    for codec in codecs()? {
        let mut scratch = Scratch::default();
        for value in &values {
            let v3 = codec.encode_event(b"id", 7, &meta, value)?.bytes;
            assert_eq!(v3[0], VERSION_COMPACT);
            let v2 = encode_event_v2(&codec, &meta, value)?;
            let v1 = codec.encode(b"id", 7, value, MAX_EVENT_SIZE)?.bytes;
            for record in [&v3, &v2, &v1] {
                let full: Decoded<String> =
                    codec.decode_event_with(b"id", record, &describe, &mut scratch)?;
                let lean: String =
                    codec.decode_event_value(b"id", record, &describe, &mut scratch)?;
                assert_eq!(lean, full.value);
                assert_eq!(&lean, value);
                assert_eq!(full.timestamp_micros, 7);
                if record != &v1 {
                    assert_eq!(full.meta, meta);
                }
            }
        }
    }
    Ok(())
}

/// A meta block that claims more bytes than the body holds is `Corrupted` for the full and
/// the lean decode, in version 2 (its meta length) and 3 (a length inside it), even with
/// the CRC made good again: the check is the meta block's, not the CRC's.
#[test]
fn a_meta_block_past_the_body_is_corrupted() -> Result<()> {
    let plain = Codec::default();
    let meta = test_meta();
    let value = "x".to_owned();
    // v2: the meta length is the body's first 4 bytes, after the 20-byte header.
    let mut v2 = encode_event_v2(&plain, &meta, &value)?;
    v2[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
    // v3: the type name's length is the body's first byte, after the 10-byte header.
    let short = RecordMeta {
        tags: Vec::new(),
        ..test_meta()
    };
    let mut v3 = plain.encode_event(b"id", 7, &short, &value)?.bytes;
    v3[10] = 250;
    for (record, reason) in [(v2, "meta length"), (v3, "passes the body's end")] {
        let record = with_good_crc(record);
        let mut scratch = Scratch::default();
        let full = plain.decode_event_with::<String>(b"id", &record, &describe, &mut scratch);
        let lean = plain.decode_event_value::<String>(b"id", &record, &describe, &mut scratch);
        for outcome in [full.map(|_| ()), lean.map(|_| ())] {
            assert!(
                matches!(&outcome, Err(Error::Corrupted { reason: r, .. }) if r.contains(reason)),
                "{outcome:?}"
            );
        }
    }
    Ok(())
}

/// A version-3 event costs 12 bytes of nonce material instead of 24, a 14-byte header
/// (encrypted; 10 plain) instead of 20, and a meta block without a length or a byte per
/// empty field: 26 bytes less than version 2 for an event without tags or metadata.
#[test]
fn a_version_3_event_is_smaller_than_version_2() -> Result<()> {
    let meta = RecordMeta {
        event_type: "Deposited".into(),
        schema_version: 1,
        tags: Vec::new(),
        metadata: EventMetadata::default(),
    };
    let value = "DE89370400440532013000 EUR INV-00000042 payroll".to_owned();
    let payload = serialize(&value)?.len();
    let encrypted = &codecs()?[2];
    let v3 = encrypted.encode_event(b"id", 7, &meta, &value)?.bytes;
    let v2 = encode_event_v2(encrypted, &meta, &value)?;
    // header 14 + material 12 + meta (1 + 9 + 1 + 1) + payload + tag 16.
    assert_eq!(v3.len(), 14 + 12 + 12 + payload + 16);
    assert_eq!(v2.len() - v3.len(), 26);
    let plain = Codec::default()
        .encode_event(b"id", 7, &meta, &value)?
        .bytes;
    assert_eq!(plain.len(), 10 + 12 + payload + 4);
    Ok(())
}
