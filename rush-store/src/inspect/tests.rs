use super::*;
use crate::{MemoryManager, PersistentActor, Store, WriteBatch, WriteOp};

#[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
struct Counter(u64);

impl PersistentActor for Counter {
    type Event = u64;
    fn apply(&mut self, e: &u64) {
        self.0 += e;
    }
}

fn database(key: Option<&[u8]>) -> Result<Arc<dyn Backend>> {
    let backend: Arc<dyn Backend> = Arc::new(MemoryManager::default());
    let mut store = Store::<Counter>::with_backend("counters", "c-1", backend.clone(), key, true)?;
    store.persist_batch(&[1, 2, 3])?;
    store.snapshot(&Counter(6))?;
    store.persist(&4)?;
    Ok(backend)
}

fn all() -> impl FnMut(u64) -> bool {
    |_| true
}

#[test]
fn a_clean_database_verifies_with_and_without_the_key() -> Result<()> {
    let backend = database(Some(&[7; 32]))?;
    let sealed = Inspector::new(backend.clone()).verify(&Scope::All, &mut all())?;
    assert!(sealed.is_ok(), "{sealed:?}");
    assert_eq!((sealed.events_checked, sealed.sealed_unchecked), (4, 5));
    let opened = Inspector::new(backend)
        .with_key(&[7; 32])?
        .verify(&Scope::All, &mut all())?;
    assert!(opened.is_ok() && opened.warnings.is_empty(), "{opened:?}");
    assert_eq!(
        (opened.log_entries_checked, opened.sealed_unchecked),
        (4, 0)
    );
    Ok(())
}

#[test]
fn a_flipped_byte_and_a_missing_event_are_errors() -> Result<()> {
    let backend = database(None)?;
    let key = EntityKey::new("counters", "c-1")?;
    let mut record = backend.get(&key.event_key(2))?.unwrap_or_default();
    let inside = record.len() - 6;
    record[inside] ^= 1;
    let ops = vec![
        WriteOp::Put {
            key: key.event_key(2),
            value: record,
        },
        WriteOp::Delete {
            key: key.event_key(3),
        },
    ];
    backend
        .commit(&WriteBatch {
            ops,
            ..WriteBatch::default()
        })?
        .ok();
    let report = Inspector::new(backend).verify(&Scope::Entity(key), &mut all())?;
    let reasons: Vec<_> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("checksum"), "{reasons:?}");
    assert!(reasons[1].contains("missing: events 3..=3"), "{reasons:?}");
    Ok(())
}

#[test]
fn rotation_resumes_and_a_wrong_key_is_named() -> Result<()> {
    let backend = database(Some(&[7; 32]))?;
    let inspector = Inspector::new(backend.clone()).with_key(&[7; 32])?;
    let mut pages = 0;
    let first = inspector.rotate_key(&EncryptionKey::from([8; 32]), &mut |_| {
        pages += 1;
        false
    })?;
    assert!(first.interrupted && first.rewritten == 4, "{first:?}");
    let second = inspector.rotate_key(&EncryptionKey::from([8; 32]), &mut all())?;
    assert_eq!((second.rewritten, second.already_done), (1, 4));
    let new_only = Inspector::new(backend.clone()).with_key(&[8; 32])?;
    new_only.check_key()?;
    assert!(new_only.verify(&Scope::All, &mut all())?.is_ok());
    let wrong = Inspector::new(backend).with_key(&[9; 32])?.check_key();
    assert!(matches!(wrong, Err(Error::Decryption { .. })), "{wrong:?}");
    Ok(())
}

#[test]
fn compact_finishes_an_interrupted_deletion() -> Result<()> {
    let backend = database(None)?;
    let inspector = Inspector::new(backend.clone());
    let key = EntityKey::new("counters", "c-1")?;
    assert!(
        inspector.delete_to(&key, 4, &mut all()).is_err(),
        "no snapshot covers 4"
    );
    let mark = WriteOp::Put {
        key: key.deleted_to_key(),
        value: 2u64.to_be_bytes().to_vec(),
    };
    backend
        .commit(&WriteBatch {
            ops: vec![mark],
            ..WriteBatch::default()
        })?
        .ok();
    let before = inspector.verify(&Scope::All, &mut all())?;
    assert!(before.is_ok() && before.warnings.len() == 2, "{before:?}");
    let report = inspector.compact(&mut all())?;
    assert_eq!((report.entities_cleaned, report.events_removed), (1, 2));
    let after = inspector.verify(&Scope::All, &mut all())?;
    assert!(after.is_ok() && after.warnings.is_empty(), "{after:?}");
    let entities = inspector.entities(&Scope::All, &mut all())?;
    assert_eq!(
        (
            entities[0].first_event,
            entities[0].highest_sequence_number()
        ),
        (3, 4)
    );
    Ok(())
}
