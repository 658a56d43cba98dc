use super::*;
use crate::keys::EntityKey;
use crate::{MemoryManager, Store};
use serde::{Deserialize, Serialize};

/// The events of the query tests' actor (also used by `subscription::read_ahead`'s tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(in crate::query) enum Event {
    Opened,
    Deposited(u64),
}

#[derive(Default, Clone, Serialize, Deserialize)]
pub(in crate::query) struct Account {
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

/// Removes `key` behind the stores' backs, as damage would.
fn remove(backend: &MemoryManager, key: Vec<u8>) -> Result<()> {
    let batch = crate::WriteBatch {
        ops: vec![crate::WriteOp::Delete { key }],
        ..Default::default()
    };
    backend
        .commit(&batch)?
        .map_err(|e| Error::storage("test", format!("{e:?}")))
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
    remove(&backend, collection_log::key_at(&log, 2))?;
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

/// (offset, entity, sequence number, event) of each event of `events`.
fn listed(events: &[StoredEvent<Event>]) -> Vec<(u64, String, u64, Event)> {
    events
        .iter()
        .map(|e| {
            (
                e.offset,
                e.entity_id.clone(),
                e.sequence_number,
                e.event.clone(),
            )
        })
        .collect()
}

/// Entities "a", "b", "c" of one collection: `a` in batches (runs of consecutive events in
/// the log), `b` and `c` one event per commit, interleaved with `a`. Returns the expected
/// listing in offset order.
fn interleaved(backend: &MemoryManager, rounds: u64) -> Result<Vec<(u64, String, u64, Event)>> {
    let mut a = Store::<Account>::new("accounts", "a", backend.clone(), None, false)?;
    let mut b = Store::<Account>::new("accounts", "b", backend.clone(), None, false)?;
    let mut c = Store::<Account>::new("accounts", "c", backend.clone(), None, false)?;
    let mut expected = Vec::new();
    let mut offset = 0;
    let mut push = |entity: &str, seq: u64, event: Event| {
        offset += 1;
        expected.push((offset, entity.to_owned(), seq, event));
    };
    for round in 0..rounds {
        let batch: Vec<_> = (0..5).map(|i| Event::Deposited(round * 10 + i)).collect();
        let last = a.persist_batch(&batch)?;
        for (seq, event) in (last - 4..).zip(batch) {
            push("a", seq, event);
        }
        let event = Event::Deposited(100 + round);
        push("b", b.persist(&event)?, event);
        let event = Event::Deposited(round);
        push("c", c.persist(&event)?, event);
        let event = Event::Deposited(200 + round);
        push("c", c.persist(&event)?, event);
    }
    Ok(expected)
}

#[test]
fn runs_of_one_entity_and_single_events_load_in_offset_order() -> Result<()> {
    let backend = MemoryManager::default();
    let expected = interleaved(&backend, 3)?;
    let query = EventQuery::<Account>::new(Arc::new(backend), "accounts", None)?;
    assert_eq!(listed(&query.events(1, &EventFilter::all())?), expected);
    // A filter on the meta (the tag "large") inside runs keeps the order too.
    let large = EventFilter::all().tag("large");
    let want: Vec<_> = expected
        .into_iter()
        .filter(|(_, _, _, event)| matches!(event, Event::Deposited(n) if *n >= 100))
        .collect();
    assert_eq!(listed(&query.events(1, &large)?), want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_page_loaded_by_two_threads_is_the_page_one_thread_loads() -> Result<()> {
    let backend = MemoryManager::default();
    let expected = interleaved(&backend, 80)?;
    assert!(expected.len() >= 2 * PARALLEL_LOAD_MIN);
    let query = EventQuery::<Account>::new(Arc::new(backend), "accounts", None)?;
    let (page, backlog) = query
        .read_with_backlog_async(1, &EventFilter::all(), 600)
        .await?;
    assert_eq!(listed(&page.events), expected[..600]);
    assert_eq!(page.next_offset, 601);
    assert_eq!(backlog, expected.len() as u64 - 600);
    let alone = query.read(1, &EventFilter::all(), 600)?;
    assert_eq!(listed(&alone.events), listed(&page.events));
    Ok(())
}

#[test]
fn an_event_missing_inside_a_run_is_damage_naming_it_and_its_offset() -> Result<()> {
    let backend = MemoryManager::default();
    let mut store = Store::<Account>::new("accounts", "a", backend.clone(), None, false)?;
    let batch: Vec<_> = (1..=6).map(Event::Deposited).collect();
    store.persist_batch(&batch)?;
    let key = EntityKey::new("accounts", "a")?;
    remove(&backend, key.event_key(3))?;
    let query = EventQuery::<Account>::new(Arc::new(backend), "accounts", None)?;
    let read = query.events(1, &EventFilter::all());
    assert!(
        matches!(&read, Err(Error::Corrupted { record, reason })
            if record.contains("event 3") && reason.contains("offset 3")),
        "{read:?}"
    );
    Ok(())
}

/// A subscriber alone reads pages of its own (its events are moved to it); with a second
/// subscriber of the collection, pages are read into the shared set for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_alone_keeps_no_shared_pages_and_two_share_them() -> Result<()> {
    let backend = MemoryManager::default();
    let expected = interleaved(&backend, 4)?;
    let db = crate::Database::open(backend, crate::DatabaseConfig::default())?;
    let query = db.query::<Account>("accounts")?;
    let shared = query.shared.clone().ok_or(Error::Shutdown)?;
    let mut alone = query.subscribe(1, EventFilter::all());
    for (offset, ..) in &expected {
        let event = alone.next().await.ok_or(Error::Shutdown)??;
        assert_eq!(event.offset, *offset);
    }
    assert_eq!(shared.kept(), 0, "read alone");
    let mut second = query.subscribe(1, EventFilter::all());
    for (offset, ..) in &expected {
        let event = second.next().await.ok_or(Error::Shutdown)??;
        assert_eq!(event.offset, *offset);
    }
    assert!(
        shared.kept() > 0,
        "read into the shared set while two are subscribed"
    );
    drop((alone, second));
    assert!(!shared.is_shared(), "dropped subscriptions no longer count");
    Ok(())
}
