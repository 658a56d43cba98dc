use super::*;

#[test]
fn ids_that_concatenate_alike_get_different_keys() -> Result<()> {
    let a = EntityKey::new("a", "bc")?;
    let b = EntityKey::new("ab", "c")?;
    assert_ne!(a.event_key(1), b.event_key(1));
    let nul = EntityKey::new("a\0", "b")?;
    let nul2 = EntityKey::new("a", "\0b")?;
    assert_ne!(nul.event_key(1), nul2.event_key(1));
    Ok(())
}

#[test]
fn no_entity_prefix_is_a_prefix_of_another_entity() -> Result<()> {
    let ids = ["a", "ab", "a\0", "\u{ff}", "a/b", "a\u{0}\u{0}"];
    for c1 in ids {
        for e1 in ids {
            for c2 in ids {
                for e2 in ids {
                    if (c1, e1) == (c2, e2) {
                        continue;
                    }
                    let p1 = EntityKey::new(c1, e1)?.prefix(RecordKind::Event);
                    let k2 = EntityKey::new(c2, e2)?.event_key(7);
                    assert!(!k2.starts_with(&p1), "{c1:?}/{e1:?} vs {c2:?}/{e2:?}");
                }
            }
        }
    }
    Ok(())
}

#[test]
fn event_keys_sort_by_sequence_number() -> Result<()> {
    let k = EntityKey::new("c", "e")?;
    let mut keys: Vec<_> = [300u64, 2, 256, 1, u64::MAX]
        .iter()
        .map(|s| k.event_key(*s))
        .collect();
    keys.sort();
    let seqs: Vec<u64> = keys
        .iter()
        .filter_map(|key| read_u64(key, key.len() - 8))
        .collect();
    assert_eq!(seqs, vec![1, 2, 256, 300, u64::MAX]);
    Ok(())
}

#[test]
fn empty_and_oversized_ids_are_refused() {
    assert!(matches!(
        EntityKey::new("", "e"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        EntityKey::new("c", ""),
        Err(Error::InvalidArgument(_))
    ));
    let long = "x".repeat(MAX_ID_LEN + 1);
    assert!(matches!(
        EntityKey::new("c", &long),
        Err(Error::InvalidArgument(_))
    ));
    assert!(EntityKey::new("c", &"x".repeat(MAX_ID_LEN)).is_ok());
}

#[test]
fn prefix_end_bounds_every_key_with_the_prefix() {
    assert_eq!(prefix_end(&[1, 2, 3]), vec![1, 2, 4]);
    assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
}
