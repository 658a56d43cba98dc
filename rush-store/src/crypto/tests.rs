use super::*;

const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
const OTHER: &[u8; 32] = b"fedcba9876543210fedcba9876543210";

#[test]
fn keys_of_any_other_length_are_refused() {
    for len in [0, 16, 31, 33, 64] {
        let bytes = vec![7u8; len];
        assert!(
            matches!(EncryptionKey::new(&bytes), Err(Error::InvalidKey { actual }) if actual == len)
        );
    }
    // The spec's sample key is 33 bytes: it must be refused, not truncated.
    assert!(EncryptionKey::new(b"your_very_secure_32_byte_key_here").is_err());
}

#[test]
fn seal_then_open_round_trips_and_binds_the_aad() -> Result<()> {
    let key = EncryptionKey::new(KEY)?;
    let sealed = key.seal(b"identity-1", b"hello")?;
    assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN);
    assert_eq!(
        key.open(b"identity-1", &sealed).ok().as_deref(),
        Some(&b"hello"[..])
    );
    assert!(key.open(b"identity-2", &sealed).is_err());
    Ok(())
}

#[test]
fn the_wrong_key_never_opens_a_record() -> Result<()> {
    let sealed = EncryptionKey::new(KEY)?.seal(b"id", b"secret")?;
    assert!(EncryptionKey::new(OTHER)?.open(b"id", &sealed).is_err());
    Ok(())
}

#[test]
fn every_flipped_bit_is_detected() -> Result<()> {
    let key = EncryptionKey::new(KEY)?;
    let sealed = key.seal(b"id", b"some payload")?;
    for i in 0..sealed.len() * 8 {
        let mut bad = sealed.clone();
        if let Some(b) = bad.get_mut(i / 8) {
            *b ^= 1 << (i % 8);
        }
        assert!(key.open(b"id", &bad).is_err(), "bit {i}");
    }
    assert!(key.open(b"id", &sealed[..10]).is_err());
    Ok(())
}

#[test]
fn nonces_are_fresh_for_every_record() -> Result<()> {
    let key = EncryptionKey::new(KEY)?;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10_000 {
        let sealed = key.seal(b"id", b"x")?;
        assert!(seen.insert(sealed[..NONCE_LEN].to_vec()));
    }
    Ok(())
}

#[test]
fn debug_never_prints_key_material() -> Result<()> {
    let key = EncryptionKey::new(KEY)?;
    let printed = format!("{key:?}");
    assert!(printed.contains("redacted"));
    assert!(!printed.contains("0123456789"));
    Ok(())
}

#[test]
fn key_ids_are_stable_distinct_and_never_zero() -> Result<()> {
    let a = EncryptionKey::new(KEY)?;
    assert_eq!(a.id(), EncryptionKey::new(KEY)?.id());
    assert_ne!(a.id(), EncryptionKey::new(OTHER)?.id());
    assert_ne!(a.id(), 0);
    Ok(())
}

#[test]
fn keyring_finds_current_and_previous_keys() -> Result<()> {
    let a = EncryptionKey::new(KEY)?;
    let b = EncryptionKey::new(OTHER)?;
    let mut ring = Keyring::new(a.clone());
    ring.promote(b.clone());
    assert_eq!(ring.current().map(EncryptionKey::id), Some(b.id()));
    assert!(ring.find(a.id()).is_some());
    assert!(ring.find(b.id()).is_some());
    assert_eq!(ring.key_ids().collect::<Vec<_>>(), vec![b.id(), a.id()]);
    Ok(())
}

#[test]
fn a_keyring_holds_each_key_once_and_its_clones_share_the_parsed_keys() -> Result<()> {
    let a = EncryptionKey::new(KEY)?;
    let b = EncryptionKey::new(OTHER)?;
    let ring = Keyring::new(b.clone()).with_decryption_keys([
        a.clone(),
        b.clone(),
        EncryptionKey::new(KEY)?,
    ]);
    assert_eq!(ring.decryption_keys().len(), 1);
    let clone = ring.clone();
    let (Some(found), Some(current)) = (clone.find(a.id()), clone.current()) else {
        panic!("keys missing: {clone:?}");
    };
    assert!(found.shares_parse_with(&a));
    assert!(current.shares_parse_with(&b));
    assert!(Keyring::default().current().is_none());
    let printed = format!("{ring:?}");
    assert!(printed.contains(&format!("{:08x}", a.id())), "{printed}");
    assert!(!printed.contains("0123456789"), "{printed}");
    Ok(())
}

#[test]
fn a_key_is_built_from_an_array_or_a_slice_of_exactly_32_bytes() -> Result<()> {
    let from_array = EncryptionKey::from(*KEY);
    let from_slice = EncryptionKey::try_from(&KEY[..])?;
    assert_eq!(from_array.id(), from_slice.id());
    let Err(error) = EncryptionKey::try_from(&KEY[..31]) else {
        panic!("a 31-byte key was accepted");
    };
    assert_eq!(
        error.to_string(),
        "encryption key must be exactly 32 bytes, got 31 bytes"
    );
    Ok(())
}

#[test]
fn clones_of_a_key_share_its_parsed_cipher() -> Result<()> {
    let key = EncryptionKey::new(KEY)?;
    assert!(key.clone().shares_parse_with(&key));
    assert!(!EncryptionKey::new(KEY)?.shares_parse_with(&key));
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn hex_keys_may_have_whitespace_around_and_between_their_digits() -> Result<()> {
    let id = EncryptionKey::new(KEY)?.id();
    let digits = hex(KEY);
    let xxd = format!("{}\n{}\n", &digits[..60], &digits[60..]);
    for text in [
        digits.clone(),
        digits.to_uppercase(),
        format!("  {digits}\r\n"),
        xxd,
    ] {
        assert_eq!(EncryptionKey::from_hex(&text)?.id(), id, "{text:?}");
    }
    Ok(())
}

#[test]
fn malformed_hex_keys_are_counted_never_quoted() {
    let digits = hex(KEY);
    let cases = [
        ("abcd".to_owned(), KeyProblem::HexLength { found: 4 }),
        (digits[..62].to_owned(), KeyProblem::HexLength { found: 62 }),
        (format!("{digits}00"), KeyProblem::HexLength { found: 66 }),
        ("not a key".to_owned(), KeyProblem::TextLength { found: 7 }),
        (format!("0x{digits}"), KeyProblem::HexPrefix { digits: 64 }),
        (
            format!("{}zz", &digits[..62]),
            KeyProblem::NotHex { position: 63 },
        ),
        (
            format!("\u{e9}{}", &digits[..63]),
            KeyProblem::NotHex { position: 1 },
        ),
    ];
    for (text, expected) in cases {
        match EncryptionKey::from_hex(&text) {
            Err(Error::InvalidKeyText { problem }) => assert_eq!(problem, expected, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let Err(error) = EncryptionKey::from_hex(&format!("{}zz", &digits[..62])) else {
        panic!("accepted");
    };
    assert!(!error.to_string().contains(&digits[..8]), "{error}");
}

/// Writes `contents` to a file and reads it as a key.
fn key_file(contents: &[u8]) -> Result<EncryptionKey> {
    let dir = tempfile::tempdir().map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let path = dir.path().join("key");
    std::fs::write(&path, contents).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    EncryptionKey::from_file(&path)
}

#[test]
fn key_files_hold_the_raw_bytes_or_hex_text() -> Result<()> {
    let id = EncryptionKey::new(KEY)?.id();
    let digits = hex(KEY);
    for contents in [
        KEY.to_vec(),
        format!("{digits}\n").into_bytes(),
        format!("{}\n{}\n", &digits[..60], &digits[60..]).into_bytes(),
    ] {
        assert_eq!(key_file(&contents)?.id(), id);
    }
    // 32 bytes are the raw key even when they happen to end with a newline.
    let mut raw = [3u8; 32];
    raw[31] = b'\n';
    assert_eq!(key_file(&raw)?.id(), EncryptionKey::from(raw).id());
    Ok(())
}

#[test]
fn malformed_key_files_say_what_they_hold_in_bytes() {
    let raw = [0xfeu8; 32];
    let with = |tail: &[u8]| [&raw[..], tail].concat();
    let digits = hex(KEY);
    let cases = [
        (with(b"\n"), KeyProblem::TrailingNewline { bytes: 33 }),
        (with(b"\r\n"), KeyProblem::TrailingNewline { bytes: 34 }),
        (
            b"rush-bank-demo-key-32-bytes-long\n".to_vec(),
            KeyProblem::TrailingNewline { bytes: 33 },
        ),
        (raw[..31].to_vec(), KeyProblem::RawLength { bytes: 31 }),
        (with(&raw), KeyProblem::RawLength { bytes: 64 }),
        (
            format!("{}\n", &digits[..32]).into_bytes(),
            KeyProblem::HexLength { found: 32 },
        ),
        (
            format!("0x{digits}\n").into_bytes(),
            KeyProblem::HexPrefix { digits: 64 },
        ),
        // Text that is not hex was meant as raw bytes: counted in bytes.
        (
            b"correct-horse-battery-staple-31".to_vec(),
            KeyProblem::RawLength { bytes: 31 },
        ),
    ];
    for (contents, expected) in cases {
        match key_file(&contents) {
            Err(Error::InvalidKeyFile { problem, .. }) => {
                assert_eq!(problem, expected, "{contents:?}");
            }
            other => panic!("{contents:?}: {other:?}"),
        }
    }
    let Err(error) = key_file(&with(b"\n")) else {
        panic!("accepted");
    };
    let message = error.to_string();
    assert!(
        message.contains("holds 33 bytes: 32 raw key bytes followed by a newline; remove it"),
        "{message}"
    );
    let Err(error) = key_file(&with(b"\r\n")) else {
        panic!("accepted");
    };
    let message = error.to_string();
    assert!(
        message.contains(r"holds 34 bytes: 32 raw key bytes followed by a line ending (\r\n)"),
        "{message}"
    );
    let missing = EncryptionKey::from_file("/nonexistent/rush.key");
    assert!(
        matches!(missing, Err(Error::KeyFileUnreadable { .. })),
        "{missing:?}"
    );
}

#[test]
fn one_subkey_cache_opens_records_of_many_writers_and_keys() -> Result<()> {
    let a = EncryptionKey::new(KEY)?;
    let b = EncryptionKey::new(OTHER)?;
    // Records sealed on other threads carry other nonce prefixes.
    let (a2, b2) = (a.clone(), b.clone());
    let from_thread = std::thread::spawn(move || {
        (
            a2.seal(b"id", b"one").unwrap(),
            b2.seal(b"id", b"two").unwrap(),
        )
    })
    .join()
    .unwrap();
    let here = (a.seal(b"id", b"three")?, a.seal(b"id", b"four")?);
    let mut cache = None;
    let mut out = Vec::new();
    for (key, sealed, expected) in [
        (&a, &from_thread.0, &b"one"[..]),
        (&a, &here.0, b"three"),
        (&b, &from_thread.1, b"two"),
        (&a, &here.1, b"four"),
        (&a, &from_thread.0, b"one"),
    ] {
        assert!(key.open_into(b"id", sealed, &mut out, &mut cache));
        assert_eq!(out, expected);
    }
    // A cached subkey never opens a record under another key.
    assert!(!b.open_into(b"id", &here.0, &mut out, &mut cache));
    assert!(out.is_empty());
    Ok(())
}

/// The `chacha20poly1305` crate's XChaCha20-Poly1305: the reference Rush's sealing (HChaCha20
/// from `chacha20`, ChaCha20-Poly1305 from `ring`) must match byte for byte.
mod reference {
    use super::*;
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce as RefNonce};
    use proptest::prelude::*;

    fn reference(key: &[u8; 32]) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(key.into())
    }

    /// The reference's `nonce ‖ ciphertext ‖ tag` of `plaintext`.
    fn reference_seal(key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut body = plaintext.to_vec();
        let tag = reference(key)
            .encrypt_inout_detached(&RefNonce::from(*nonce), aad, body.as_mut_slice().into())
            .unwrap();
        [&nonce[..], &body, &tag].concat()
    }

    #[test]
    fn key_ids_are_the_ones_the_reference_cipher_computed() {
        for key in [KEY, OTHER, &[0u8; 32], &[0xFF; 32]] {
            let tag = reference(key)
                .encrypt_inout_detached(
                    &RefNonce::default(),
                    b"rush-store key id v1",
                    (&mut [0u8; 0][..]).into(),
                )
                .unwrap();
            let id = u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]]).max(1);
            assert_eq!(EncryptionKey::from(*key).id(), id);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn what_rush_seals_the_reference_opens_and_back(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 24]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let ours = EncryptionKey::from(key);
            // The same nonce gives the same bytes.
            let mut sealed = nonce.to_vec();
            let split = XNonce {
                prefix: nonce[..16].try_into().unwrap(),
                counter: nonce[16..].try_into().unwrap(),
            };
            ours.encrypt_appended(&split, &aad, &plaintext, &mut sealed).unwrap();
            prop_assert_eq!(&sealed, &reference_seal(&key, &nonce, &aad, &plaintext));
            // Rush opens what the reference sealed, and refuses it under another aad.
            let mut out = Vec::new();
            prop_assert!(ours.open_into(&aad, &sealed, &mut out, &mut None));
            prop_assert_eq!(&out, &plaintext);
            let mut other_aad = aad.clone();
            other_aad.push(1);
            prop_assert!(!ours.open_into(&other_aad, &sealed, &mut out, &mut None));
            // What `seal` makes with a fresh nonce, the reference opens.
            let fresh = ours.seal(&aad, &plaintext).unwrap();
            let (head, rest) = fresh.split_at(NONCE_LEN);
            let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
            let mut opened = body.to_vec();
            let head: [u8; 24] = head.try_into().unwrap();
            let tag: [u8; 16] = tag.try_into().unwrap();
            reference(&key)
                .decrypt_inout_detached(
                    &RefNonce::from(head),
                    &aad,
                    opened.as_mut_slice().into(),
                    &tag.into(),
                )
                .unwrap();
            prop_assert_eq!(opened, plaintext);
        }
    }
}
