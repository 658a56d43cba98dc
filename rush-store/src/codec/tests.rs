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
    future[0] = 3;
    let err = codec.decode::<String>(b"id", &future, MAX_EVENT_SIZE, &describe);
    assert!(
        matches!(&err, Err(Error::Corrupted { reason, .. }) if reason.contains("version 3")),
        "{err:?}"
    );
    Ok(())
}

/// Replay's lean decode gives the value the full decode gives, for events with tags and
/// metadata (v2) and for events written before the meta block (v1), in every combination
/// of compression and encryption; a damaged meta length is `Corrupted` for both.
#[test]
fn the_value_alone_is_the_value_of_the_full_decode() -> Result<()> {
    let meta = RecordMeta {
        event_type: "Renamed".into(),
        schema_version: 1,
        tags: vec!["a".into(), "b".repeat(300)],
        metadata: EventMetadata {
            correlation_id: Some("c".into()),
            causation_id: None,
            user_id: Some("u".into()),
            tenant_id: None,
        },
    };
    let values = [String::new(), "short".into(), "long ".repeat(200)];
    for codec in codecs()? {
        let mut scratch = Scratch::default();
        for value in &values {
            let v2 = codec.encode_event(b"id", 7, &meta, value)?;
            let v1 = codec.encode(b"id", 7, value, MAX_EVENT_SIZE)?;
            for record in [&v2.bytes, &v1.bytes] {
                let full: Decoded<String> =
                    codec.decode_event_with(b"id", record, &describe, &mut scratch)?;
                let lean: String =
                    codec.decode_event_value(b"id", record, &describe, &mut scratch)?;
                assert_eq!(lean, full.value);
                assert_eq!(&lean, value);
            }
        }
    }
    let plain = Codec::default();
    let mut record = plain.encode_event(b"id", 7, &meta, &"x".to_owned())?.bytes;
    // The meta length (the body's first 4 bytes, after the 20-byte header) past the body,
    // with the CRC made good again: the check is the meta length's, not the CRC's.
    record[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
    let crc_at = record.len() - 4;
    let mut crc = crc32fast::Hasher::new();
    crc.update(b"id");
    crc.update(&record[..crc_at]);
    record[crc_at..].copy_from_slice(&crc.finalize().to_be_bytes());
    let mut scratch = Scratch::default();
    let full = plain.decode_event_with::<String>(b"id", &record, &describe, &mut scratch);
    let lean = plain.decode_event_value::<String>(b"id", &record, &describe, &mut scratch);
    for outcome in [full.map(|_| ()), lean.map(|_| ())] {
        assert!(
            matches!(&outcome, Err(Error::Corrupted { reason, .. }) if reason.contains("meta length")),
            "{outcome:?}"
        );
    }
    Ok(())
}
