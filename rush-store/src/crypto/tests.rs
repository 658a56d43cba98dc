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
        key.open(b"identity-1", &sealed).as_deref(),
        Some(&b"hello"[..])
    );
    assert!(key.open(b"identity-2", &sealed).is_none());
    Ok(())
}

#[test]
fn the_wrong_key_never_opens_a_record() -> Result<()> {
    let sealed = EncryptionKey::new(KEY)?.seal(b"id", b"secret")?;
    assert!(EncryptionKey::new(OTHER)?.open(b"id", &sealed).is_none());
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
        assert!(key.open(b"id", &bad).is_none(), "bit {i}");
    }
    assert!(key.open(b"id", &sealed[..10]).is_none());
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
    let mut ring = Keyring::new(Some(a.clone()));
    ring.promote(b.clone());
    assert_eq!(ring.current().map(EncryptionKey::id), Some(b.id()));
    assert!(ring.find(a.id()).is_some());
    assert!(ring.find(b.id()).is_some());
    Ok(())
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
