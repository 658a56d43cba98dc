//! `Inspector::reindex` on the records format v1 wrote (the golden fixtures, and v1
//! events written here byte by byte from FORMAT.md) beside format-v2 events: afterwards
//! `EventQuery` sees every event exactly once, at gap-free offsets after the v2 events,
//! in timestamp order across entities and sequence order within each; reindexing again
//! does nothing, and an interrupted run finished by a second one ends the same.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/golden.rs"]
mod golden;

use golden::{
    CASES, COLLECTION, GoldenEvent, GoldenState, KEY, crc32, expected_events, golden_dir, header,
    read_fixture,
};
use rush_store::inspect::{Inspector, ReindexReport};
use rush_store::{Backend, EventFilter, EventQuery, MemoryManager, Store, WriteBatch, WriteOp};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Entries per committed page of `reindex` (the journal's page size).
const PAGE: u64 = 512;
const BULK: u64 = 600;

fn id_bytes(id: &str) -> Vec<u8> {
    let mut out = (id.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(id.as_bytes());
    out
}

fn event_key(entity: &str, seq: u64) -> Vec<u8> {
    let mut key = vec![1u8];
    key.extend(id_bytes(COLLECTION));
    key.extend(id_bytes(entity));
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// A plain (not compressed, not encrypted) format-v1 event record, as FORMAT.md lays it
/// out: header, the bincode payload, CRC-32 over key, header and body.
fn v1_event(entity: &str, seq: u64, timestamp_micros: u64, name: &str) -> (Vec<u8>, Vec<u8>) {
    assert!(name.len() < 251, "one-byte varint length");
    // GoldenEvent::Renamed(name): variant 0, then the string (varint length, bytes).
    let mut body = vec![0u8, name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    let mut record = vec![1u8, 0, 1, 0, 0, 0, 0, 0];
    record.extend_from_slice(&timestamp_micros.to_be_bytes());
    record.extend_from_slice(&(body.len() as u32).to_be_bytes());
    record.extend_from_slice(&body);
    let key = event_key(entity, seq);
    let crc = crc32(&[&key, &record]);
    record.extend_from_slice(&crc.to_be_bytes());
    (key, record)
}

fn fixture(names: &[&str]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let dir = golden_dir("v1");
    CASES
        .iter()
        .filter(|case| names.contains(&case.name))
        .flat_map(|case| read_fixture(&case.file(&dir)))
        .collect()
}

fn put(manager: &MemoryManager, records: Vec<(Vec<u8>, Vec<u8>)>) {
    let ops = records
        .into_iter()
        .map(|(key, value)| WriteOp::Put { key, value })
        .collect();
    manager
        .commit(&WriteBatch {
            ops,
            ..WriteBatch::default()
        })
        .unwrap()
        .unwrap();
}

/// The plain golden fixtures (entities `plain` and `compressed`, 10 events each), and
/// v1 events of: `x` (timestamps 300, 100, 200: its clock went backwards), `y` (150,
/// 250), `bulk` (600 events, 1 ms apart from the golden events' first timestamp), `gone`
/// (events 1..=3, deletion mark at 2: an interrupted deletion left 1 and 2), `broken`
/// (event 1 fails its CRC, event 2 is fine); then 3 format-v2 events of `modern`, which
/// take offsets 1..=3.
fn database() -> MemoryManager {
    let golden = fixture(&["plain", "compressed"]);
    let golden_start = golden
        .iter()
        .filter(|(key, _)| key[0] == 1)
        .map(|(_, value)| header(value).timestamp_micros)
        .min()
        .unwrap();
    let manager = golden::load(&golden);
    let mut records = vec![
        v1_event("x", 1, 300, "x1"),
        v1_event("x", 2, 100, "x2"),
        v1_event("x", 3, 200, "x3"),
        v1_event("y", 1, 150, "y1"),
        v1_event("y", 2, 250, "y2"),
    ];
    for seq in 1..=BULK {
        records.push(v1_event(
            "bulk",
            seq,
            golden_start + seq * 1000,
            &format!("b{seq}"),
        ));
    }
    for seq in 1..=3 {
        records.push(v1_event("gone", seq, 50 + seq, &format!("g{seq}")));
    }
    let mut deletion_mark = vec![4u8];
    deletion_mark.extend(id_bytes(COLLECTION));
    deletion_mark.extend(id_bytes("gone"));
    records.push((deletion_mark, 2u64.to_be_bytes().to_vec()));
    let (key, mut broken) = v1_event("broken", 1, 10, "broken");
    let last = broken.len() - 1;
    broken[last] ^= 1;
    records.push((key, broken));
    records.push(v1_event("broken", 2, 20, "fine"));
    put(&manager, records);

    let mut modern = Store::<GoldenState>::new(COLLECTION, "modern", manager.clone(), None, false)
        .expect("store");
    modern
        .persist_batch(&[GoldenEvent::Cleared, GoldenEvent::Cleared])
        .unwrap();
    modern.persist(&GoldenEvent::Cleared).unwrap();
    manager
}

fn query(manager: &MemoryManager, key: Option<&[u8]>) -> EventQuery<GoldenState> {
    EventQuery::new(Arc::new(manager.clone()), COLLECTION, key).unwrap()
}

/// (offset, entity, seq) of every event the query returns, in offset order.
fn positions(manager: &MemoryManager) -> Vec<(u64, String, u64)> {
    query(manager, None)
        .events(0, &EventFilter::all())
        .unwrap()
        .into_iter()
        .map(|e| (e.offset, e.entity_id, e.sequence_number))
        .collect()
}

fn reindex(manager: &MemoryManager, progress: &mut dyn FnMut(u64) -> bool) -> ReindexReport {
    Inspector::new(Arc::new(manager.clone()))
        .reindex(progress)
        .unwrap()
}

/// The order FORMAT.md's upgrade note promises, computed from the stored records: among
/// the entities' next unindexed events, the smallest (timestamp, entity id, seq) first.
fn expected_order(manager: &MemoryManager, skip: &BTreeSet<(String, u64)>) -> Vec<(String, u64)> {
    let mut per_entity: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for (key, value) in manager.scan(&[1], &[2], usize::MAX, false).unwrap() {
        let entity_len = u16::from_be_bytes([key[9], key[10]]) as usize;
        let entity = String::from_utf8(key[11..11 + entity_len].to_vec()).unwrap();
        let seq = u64::from_be_bytes(key[key.len() - 8..].try_into().unwrap());
        if !skip.contains(&(entity.clone(), seq)) {
            per_entity
                .entry(entity)
                .or_default()
                .push((header(&value).timestamp_micros, seq));
        }
    }
    let mut order = Vec::new();
    loop {
        let next = per_entity
            .iter()
            .filter_map(|(entity, events)| events.first().map(|&(ts, seq)| (ts, entity, seq)))
            .min()
            .map(|(_, entity, seq)| (entity.clone(), seq));
        let Some((entity, seq)) = next else {
            return order;
        };
        per_entity.get_mut(&entity).unwrap().remove(0);
        order.push((entity, seq));
    }
}

#[test]
fn reindex_gives_v1_events_offsets_after_the_v2_events() {
    let manager = database();
    let before = positions(&manager);
    assert_eq!(
        before,
        (1..=3)
            .map(|seq| (seq, "modern".to_owned(), seq))
            .collect::<Vec<_>>(),
        "before: only the v2 events are in the log"
    );
    let not_indexed: BTreeSet<(String, u64)> = [
        ("modern", 1),
        ("modern", 2),
        ("modern", 3),
        ("gone", 1),
        ("gone", 2),
        ("broken", 1),
    ]
    .into_iter()
    .map(|(e, s)| (e.to_owned(), s))
    .collect();
    let expected = expected_order(&manager, &not_indexed);
    let total = 3 + expected.len() as u64;
    assert_eq!(expected.len() as u64, 20 + 3 + 2 + BULK + 1 + 1);

    let report = reindex(&manager, &mut |_| true);
    assert!(!report.interrupted, "{report:?}");
    assert_eq!(report.already_indexed, 3);
    assert_eq!(report.indexed(), total - 3);
    assert_eq!(report.collections.len(), 1);
    let golden = &report.collections[0];
    assert_eq!(
        (
            golden.collection.as_str(),
            golden.first_offset,
            golden.last_offset
        ),
        (COLLECTION, 4, total)
    );
    assert_eq!(report.unreadable.len(), 1, "{:?}", report.unreadable);
    assert!(
        report.unreadable[0]
            .record
            .contains("event 1 of \"golden\"/\"broken\""),
        "{:?}",
        report.unreadable
    );

    let after = positions(&manager);
    // Gap-free offsets from 1, the v2 events where they were.
    let offsets: Vec<u64> = after.iter().map(|p| p.0).collect();
    assert_eq!(offsets, (1..=total).collect::<Vec<_>>());
    assert_eq!(after[..3], before[..]);
    // Every event exactly once, in the promised order (which keeps each entity's events in
    // sequence order although x's timestamps go backwards).
    let reindexed: Vec<(String, u64)> = after[3..]
        .iter()
        .map(|(_, entity, seq)| (entity.clone(), *seq))
        .collect();
    assert_eq!(reindexed, expected);
    let mut last_seq: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, entity, seq) in &after {
        let previous = last_seq.insert(entity, *seq).unwrap_or(0);
        assert!(*seq > previous, "{entity}: {seq} after {previous}");
    }
    let at = |entity: &str, seq: u64| {
        reindexed
            .iter()
            .position(|p| *p == (entity.to_owned(), seq))
            .unwrap()
    };
    // y1 (150) < y2 (250) < x1 (300), which x2 (100) and x3 (200) must follow.
    assert!(at("gone", 3) < at("y", 1));
    assert!(at("y", 1) < at("y", 2) && at("y", 2) < at("x", 1));
    assert!(at("x", 1) < at("x", 2) && at("x", 2) < at("x", 3));
    // The golden events decode as the golden script.
    let plain: Vec<GoldenEvent> = query(&manager, None)
        .events(0, &EventFilter::all().entity("plain"))
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(plain, expected_events());

    // Nothing left to do.
    let again = reindex(&manager, &mut |_| true);
    assert_eq!(again.indexed(), 0, "{again:?}");
    assert!(again.collections.is_empty() && !again.interrupted);
    assert_eq!(again.already_indexed, total);
    assert_eq!(again.unreadable.len(), 1);
    assert_eq!(positions(&manager), after);
}

#[test]
fn an_interrupted_reindex_is_finished_by_running_it_again() {
    let whole = database();
    reindex(&whole, &mut |_| true);

    let manager = database();
    let mut calls = 0;
    let first = reindex(&manager, &mut |n| {
        calls += 1;
        assert_eq!(n, PAGE, "the first report is the first committed page");
        false
    });
    assert_eq!(calls, 1);
    assert!(first.interrupted, "{first:?}");
    assert_eq!(first.indexed(), PAGE);
    assert_eq!(query(&manager, None).highest_offset().unwrap(), 3 + PAGE);

    let second = reindex(&manager, &mut |_| true);
    assert!(!second.interrupted, "{second:?}");
    assert_eq!(second.already_indexed, 3 + PAGE);
    assert_eq!(second.collections[0].first_offset, 4 + PAGE);
    assert_eq!(positions(&manager), positions(&whole));
}

#[test]
fn encrypted_v1_events_are_indexed_without_the_key_and_read_with_it() {
    let manager = golden::load(&fixture(&["encrypted", "compressed-encrypted"]));
    let mut modern =
        Store::<GoldenState>::new(COLLECTION, "modern", manager.clone(), Some(KEY), true).unwrap();
    modern.persist(&GoldenEvent::Cleared).unwrap();

    let report = reindex(&manager, &mut |_| true);
    assert_eq!(
        (report.indexed(), report.already_indexed),
        (20, 1),
        "{report:?}"
    );
    assert!(report.unreadable.is_empty(), "{report:?}");

    let events = query(&manager, Some(KEY))
        .events(0, &EventFilter::all())
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.offset).collect::<Vec<_>>(),
        (1..=21).collect::<Vec<_>>()
    );
    for entity in ["encrypted", "compressed-encrypted"] {
        let decoded: Vec<GoldenEvent> = events
            .iter()
            .filter(|e| e.entity_id == entity)
            .map(|e| e.event.clone())
            .collect();
        assert_eq!(decoded, expected_events(), "{entity}");
    }
    // With the key, the records are opened and checked as well: the same outcome.
    let with_key = Inspector::new(Arc::new(manager.clone()))
        .with_key(KEY)
        .unwrap()
        .reindex(&mut |_| true)
        .unwrap();
    assert_eq!((with_key.indexed(), with_key.already_indexed), (0, 21));
}
