use super::*;
use crate::{MemoryManager, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Event {
    Opened,
    Deposited(u64),
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct Account {
    balance: u64,
}

impl PersistentActor for Account {
    type Event = Event;
    fn apply(&mut self, event: &Event) {
        if let Event::Deposited(n) = event {
            self.balance += n;
        }
    }
    fn event_tags(event: &Event) -> Vec<String> {
        match event {
            Event::Deposited(n) if *n >= 100 => vec!["large".into()],
            _ => Vec::new(),
        }
    }
}

#[test]
fn a_missing_offset_is_damage_not_a_silent_skip() -> Result<()> {
    let backend = MemoryManager::default();
    let mut store = Store::<Account>::new("accounts", "a", backend.clone(), None, false)?;
    // One commit each: three blocks of one entry.
    for event in [Event::Opened, Event::Deposited(1), Event::Deposited(2)] {
        store.persist(&event)?;
    }
    let log = collection_log::log_of("accounts")?;
    let batch = crate::WriteBatch {
        ops: vec![crate::WriteOp::Delete {
            key: collection_log::key_at(&log, 2),
        }],
        ..Default::default()
    };
    backend
        .commit(&batch)?
        .map_err(|e| Error::storage("test", format!("{e:?}")))?;
    let query = EventQuery::<Account>::new(Arc::new(backend), "accounts", None)?;
    let read = query.events(1, &EventFilter::all());
    assert!(
        matches!(&read, Err(Error::Corrupted { reason, .. }) if reason.contains("offset 2")),
        "{read:?}"
    );
    Ok(())
}

#[test]
fn entity_ids_are_listed_once_each_without_confusing_prefixes() -> Result<()> {
    let backend = MemoryManager::default();
    for (collection, entity) in [("accounts", "a"), ("accounts", "ab"), ("accounts2", "c")] {
        let mut store = Store::<Account>::new(collection, entity, backend.clone(), None, false)?;
        store.persist_batch(&[Event::Opened, Event::Deposited(5)])?;
    }
    let query = EventQuery::<Account>::new(Arc::new(backend), "accounts", None)?;
    assert_eq!(query.entity_ids()?, vec!["a".to_owned(), "ab".to_owned()]);
    Ok(())
}

#[test]
fn entity_ids_include_an_entity_whose_whole_history_was_deleted() -> Result<()> {
    let backend = MemoryManager::default();
    for entity in ["bb", "a", "c"] {
        let mut store = Store::<Account>::new("accounts", entity, backend.clone(), None, false)?;
        store.persist_batch(&[Event::Opened, Event::Deposited(5)])?;
        if entity == "a" {
            store.snapshot(&Account { balance: 5 })?;
            assert_eq!(store.delete_events_to(2)?, 2);
        }
    }
    let query = EventQuery::<Account>::new(Arc::new(backend), "accounts", None)?;
    assert_eq!(
        query.entity_ids()?,
        vec!["a".to_owned(), "bb".to_owned(), "c".to_owned()]
    );
    Ok(())
}

#[test]
fn a_damaged_log_block_is_refused_never_a_wrong_event() -> Result<()> {
    let backend = MemoryManager::default();
    let mut store = Store::<Account>::new("accounts", "a", backend.clone(), None, false)?;
    store.persist_batch(&[Event::Opened, Event::Deposited(1), Event::Deposited(2)])?;
    let log = collection_log::log_of("accounts")?;
    let key = collection_log::key_at(&log, 1);
    let mut block = backend
        .get(&key)?
        .ok_or_else(|| Error::storage("test", "no block"))?;
    // The last byte of the first entry's sequence number: 1 becomes 2, a valid-looking
    // pointer at another event.
    // Block: [version][count u32][len u32][entry...]; entry: [version][timestamp u64][seq u64].
    let first_entry = 1 + 4 + 4;
    block[first_entry + 16] ^= 0x03;
    let batch = crate::WriteBatch {
        ops: vec![crate::WriteOp::Put { key, value: block }],
        ..Default::default()
    };
    backend
        .commit(&batch)?
        .map_err(|e| Error::storage("test", format!("{e:?}")))?;
    let query = EventQuery::<Account>::new(Arc::new(backend), "accounts", None)?;
    let read = query.events(1, &EventFilter::all());
    assert!(matches!(&read, Err(Error::Corrupted { .. })), "{read:?}");
    Ok(())
}
