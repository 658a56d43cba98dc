//! What the golden-format tests of format version 2 and later share: the metadata the
//! script persists with each batch, the meta block every event must carry, writing the
//! script through a `Store` (fixtures and fresh records), the keys of log blocks and the
//! table row, and the checks through the API (`Store`, `EventQuery`, `Table`).
#![allow(dead_code)]

use super::golden::{
    COLLECTION, Case, GoldenEvent, GoldenState, KIND_EVENT, KIND_LOG_ENTRY, KIND_SNAPSHOT,
    KIND_TABLE_ROW, SNAPSHOT_AT, check_flags_covered, check_record, check_sealed,
    check_through_store, crc32, dump, expected_events, golden_tags, hex, journal_keys, name_prefix,
    plain_body, script, state_after,
};
use rush_store::{
    CompressionConfig, CompressionLevel, Error, EventFilter, EventMetadata, EventQuery,
    MemoryManager, Table,
};
use serde::Deserialize;
use std::sync::Arc;

/// Snapshots and table rows keep format version 1.
pub const PLAIN_VERSION: u8 = 1;
/// A table row beside the journal: `TABLE` / `ROW` holds `ROW_VALUE` (a u64).
pub const TABLE: &str = "golden-checkpoints";
pub const ROW: &str = "projection";
pub const ROW_VALUE: u64 = 10;

/// The metadata persisted with each batch of [`script`] (fixed values; part of the
/// fixtures). Empty metadata goes through `persist`/`persist_batch`, the rest through
/// `persist_with_metadata`.
pub fn batch_metadata() -> Vec<EventMetadata> {
    let all = |n: u32| {
        EventMetadata::default()
            .with_correlation_id(format!("golden-correlation-{n}"))
            .with_causation_id(format!("golden-command-{n}"))
            .with_user_id("alice")
            .with_tenant_id("tenant-a")
    };
    vec![
        all(1),
        EventMetadata::default(),
        EventMetadata::default().with_correlation_id("golden-correlation-1"),
        EventMetadata::default()
            .with_causation_id("golden-command-4")
            .with_user_id("bob"),
        EventMetadata::default().with_tenant_id("tenant-ü 🦀"),
        EventMetadata::default(),
        all(7),
    ]
}

/// The meta block as FORMAT.md lays it out, decoded here without the library's types.
#[derive(Debug, PartialEq, Deserialize)]
pub struct Meta {
    pub event_type: String,
    pub schema_version: u32,
    pub tags: Vec<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
}

/// Per event (sequence number 1..), the meta it must carry.
pub fn expected_meta() -> Vec<Meta> {
    script()
        .into_iter()
        .zip(batch_metadata())
        .flat_map(|(batch, metadata)| {
            batch.into_iter().map(move |event| Meta {
                event_type: match event {
                    GoldenEvent::Renamed(_) => "Renamed",
                    GoldenEvent::Recorded { .. } => "Recorded",
                    GoldenEvent::Cleared => "Cleared",
                }
                .to_owned(),
                schema_version: 1,
                tags: golden_tags(&event),
                correlation_id: metadata.correlation_id.clone(),
                causation_id: metadata.causation_id.clone(),
                user_id: metadata.user_id.clone(),
                tenant_id: metadata.tenant_id.clone(),
            })
        })
        .collect()
}

pub fn metadata_of(meta: &Meta) -> EventMetadata {
    EventMetadata {
        correlation_id: meta.correlation_id.clone(),
        causation_id: meta.causation_id.clone(),
        user_id: meta.user_id.clone(),
        tenant_id: meta.tenant_id.clone(),
    }
}

pub fn bincode_exact<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, bincode::config::standard()).unwrap();
    assert_eq!(read, bytes.len(), "trailing bytes after the value");
    value
}

/// Writes the script through a `Store`, as an application would, plus one table row.
pub fn generate(case: Case) -> Vec<(Vec<u8>, Vec<u8>)> {
    let manager = MemoryManager::default();
    let mut store = case.open(manager.clone());
    if case.compressed {
        // Pinned, so that the mix of compressed and plain records does not follow the defaults.
        store
            .set_compression_config(CompressionConfig {
                min_size_threshold: 128,
                min_ratio_threshold: 0.10,
                compression_level: CompressionLevel::Balanced,
            })
            .unwrap();
    }
    let mut persisted = Vec::new();
    for (batch, metadata) in script().into_iter().zip(batch_metadata()) {
        let seq = if !metadata.is_empty() {
            store.persist_with_metadata(&batch, &metadata).unwrap()
        } else if batch.len() == 1 {
            store.persist(&batch[0]).unwrap()
        } else {
            store.persist_batch(&batch).unwrap()
        };
        persisted.extend(batch);
        assert_eq!(seq, persisted.len() as u64);
        if SNAPSHOT_AT.contains(&seq) {
            store.snapshot(&state_after(&persisted)).unwrap();
        }
    }
    Table::<u64>::open(Arc::new(manager.clone()), TABLE, case.key())
        .unwrap()
        .put(ROW, &ROW_VALUE)
        .unwrap();
    dump(&manager)
}

/// The key of the log block whose first entry is at `offset` in the golden collection.
pub fn log_key(offset: u64) -> Vec<u8> {
    let mut key = name_prefix(KIND_LOG_ENTRY, COLLECTION);
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

pub fn row_key() -> Vec<u8> {
    let mut key = name_prefix(KIND_TABLE_ROW, TABLE);
    key.extend_from_slice(ROW.as_bytes());
    key
}

/// What fixtures of format version 2 and later must read back as through the API, beyond
/// [`check_through_store`]: event types, tags and metadata, the collection log through
/// `EventQuery` (offsets, filters, pages) and the table row; a wrong key opens nothing.
pub fn check_api(case: Case, records: &[(Vec<u8>, Vec<u8>)]) {
    let events = expected_events();
    let metas = expected_meta();
    let manager = check_through_store(case, records);

    // Type, tags and metadata read back through the store.
    let store = case.open(manager.clone());
    let envelopes = store.events_with_metadata(0, u64::MAX).unwrap();
    for (envelope, meta) in envelopes.iter().zip(&metas) {
        let what = format!("{}: event {}", case.name, envelope.sequence_number);
        assert_eq!(envelope.event_type, meta.event_type, "{what}");
        assert_eq!(envelope.tags, meta.tags, "{what}");
        assert_eq!(envelope.metadata, metadata_of(meta), "{what}");
    }

    // The collection log through EventQuery: offsets 1..=10 are events 1..=10.
    let backend: Arc<MemoryManager> = Arc::new(manager.clone());
    let query = EventQuery::<GoldenState>::new(backend.clone(), COLLECTION, case.key()).unwrap();
    assert_eq!(query.highest_offset().unwrap(), 10, "{}", case.name);
    assert_eq!(
        query.entity_ids().unwrap(),
        vec![case.entity().to_owned()],
        "{}",
        case.name
    );
    let all = query.events(0, &EventFilter::all()).unwrap();
    assert_eq!(all.len(), events.len(), "{}", case.name);
    for ((stored, envelope), offset) in all.iter().zip(&envelopes).zip(1u64..) {
        let what = format!("{}: offset {offset}", case.name);
        assert_eq!(stored.offset, offset, "{what}");
        assert_eq!(stored.entity_id, case.entity(), "{what}");
        assert_eq!(stored.sequence_number, offset, "{what}");
        assert_eq!(stored.timestamp, envelope.timestamp, "{what}");
        assert_eq!(stored.event_type, envelope.event_type, "{what}");
        assert_eq!(stored.tags, envelope.tags, "{what}");
        assert_eq!(stored.metadata, envelope.metadata, "{what}");
        assert_eq!(stored.event, events[offset as usize - 1], "{what}");
    }
    let offsets = |filter: &EventFilter| -> Vec<u64> {
        query
            .events(0, filter)
            .unwrap()
            .iter()
            .map(|e| e.offset)
            .collect()
    };
    assert_eq!(
        offsets(&EventFilter::all().event_type("Recorded")),
        vec![2, 3, 4, 6, 9, 10],
        "{}",
        case.name
    );
    assert_eq!(
        offsets(
            &EventFilter::all()
                .event_type("Renamed")
                .event_type("Cleared")
        ),
        vec![1, 5, 7, 8],
        "{}",
        case.name
    );
    assert_eq!(
        offsets(&EventFilter::all().tag("recorded").tag("large")),
        vec![3, 4],
        "{}",
        case.name
    );
    assert_eq!(
        offsets(&EventFilter::all().entity(case.entity())).len(),
        10,
        "{}",
        case.name
    );
    assert!(
        offsets(&EventFilter::all().entity("someone-else")).is_empty(),
        "{}",
        case.name
    );
    // Time filters use the log entries' timestamps: from the batch of event 5 on.
    let since = envelopes[4].timestamp;
    let expected_since: Vec<u64> = envelopes
        .iter()
        .filter(|e| e.timestamp >= since)
        .map(|e| e.sequence_number)
        .collect();
    assert_eq!(expected_since[0], 4, "{}: batch of events 4..=6", case.name);
    assert_eq!(
        offsets(&EventFilter::all().since(since)),
        expected_since,
        "{}",
        case.name
    );
    let page = query.read(4, &EventFilter::all(), 3).unwrap();
    let page_offsets: Vec<u64> = page.events.iter().map(|e| e.offset).collect();
    assert_eq!(page_offsets, vec![4, 5, 6], "{}", case.name);
    assert_eq!(page.next_offset, 7, "{}", case.name);
    let correlated: Vec<u64> = query
        .events(0, &EventFilter::all())
        .unwrap()
        .into_iter()
        .filter(|e| e.metadata.correlation_id.as_deref() == Some("golden-correlation-1"))
        .map(|e| e.offset)
        .collect();
    assert_eq!(correlated, vec![1, 3], "{}", case.name);

    // The table row beside the journal.
    let table = Table::<u64>::open(backend.clone(), TABLE, case.key()).unwrap();
    assert_eq!(table.get(ROW).unwrap(), Some(ROW_VALUE), "{}", case.name);

    if case.encrypted {
        let wrong =
            EventQuery::<GoldenState>::new(backend.clone(), COLLECTION, Some(&[9u8; 32])).unwrap();
        assert!(
            matches!(
                wrong.events(0, &EventFilter::all()),
                Err(Error::Decryption { .. })
            ),
            "{}: a wrong key must not open the records",
            case.name
        );
        let wrong = Table::<u64>::open(backend, TABLE, Some(&[9u8; 32])).unwrap();
        assert!(
            matches!(wrong.get(ROW), Err(Error::Decryption { .. })),
            "{}",
            case.name
        );
    }
}

/// The first offset of each log block: one block per persist call of [`script`].
pub fn block_starts() -> Vec<u64> {
    script()
        .iter()
        .scan(1u64, |next, batch| {
            let first = *next;
            *next += batch.len() as u64;
            Some(first)
        })
        .collect()
}

/// The key layout: events, snapshots, one log block per persist call, the table row;
/// nothing else. Returns the log blocks' first offsets.
pub fn check_keys(case: Case, records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u64> {
    let block_starts = block_starts();
    let mut expected_keys = journal_keys(case);
    expected_keys.extend(block_starts.iter().copied().map(log_key));
    expected_keys.push(row_key());
    let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, expected_keys, "{}: keys", case.name);
    block_starts
}

/// A snapshot or the table row, which every format version since 1 writes as version 1:
/// its bytes and, when not encrypted, its value. Returns its flags.
pub fn check_version_1_record(case: Case, key: &[u8], value: &[u8]) -> u8 {
    let what = format!("{}: record {}", case.name, hex(key));
    if key[0] == KIND_SNAPSHOT {
        let flags = check_record(case, PLAIN_VERSION, key, value);
        if !case.encrypted {
            let seq = u64::from_be_bytes(key[key.len() - 8..].try_into().unwrap());
            let state: GoldenState = bincode_exact(&plain_body(value));
            let events = expected_events();
            assert_eq!(state, state_after(&events[..seq as usize]), "{what}");
        }
        return flags;
    }
    // Tables never compress; sealed with the row key as identity.
    let flags = check_sealed(case.name, case.encrypted, false, PLAIN_VERSION, key, value);
    if !case.encrypted {
        assert_eq!(
            bincode_exact::<u64>(&plain_body(value)),
            ROW_VALUE,
            "{what}"
        );
    }
    flags
}

/// Checks one event record (case, key, value, sequence number): its flags and timestamp.
pub type CheckEvent = fn(Case, &[u8], &[u8], usize) -> (u8, u64);
/// A log block's entries, rebuilt, and where its CRC starts.
pub type BlockEntriesOf = fn(&str, &[u8]) -> (Vec<Vec<u8>>, usize);
/// An entry's timestamp, sequence number and entity id.
pub type EntryFields = fn(&str, &[u8]) -> (u64, u64, Vec<u8>);

/// What one format version's byte-level checks need of it.
pub struct Layout {
    /// Checks the event record stored at `key` (sequence number `seq`) byte by byte and,
    /// when it is not encrypted, its meta block and payload; returns its flags and its
    /// header's timestamp.
    pub event: CheckEvent,
    /// The version byte of the log blocks it writes.
    pub block_version: u8,
    /// A log block's entries, rebuilt, and where its CRC starts (`what` names it in
    /// failures).
    pub block_entries: BlockEntriesOf,
    /// An entry's timestamp, sequence number and entity id.
    pub entry_fields: EntryFields,
}

/// The key layout and every record byte by byte: events through `layout`, snapshots and
/// the table row as version 1, and the log blocks, one per persist call, keyed by the
/// offset of their first entry, entry `n` pointing at event `n` (one entity per fixture)
/// with that event's timestamp, each block ending with a CRC-32 of its key and bytes.
pub fn check_bytes(case: Case, records: &[(Vec<u8>, Vec<u8>)], layout: &Layout) {
    let head = expected_events().len() as u64;
    let block_starts = check_keys(case, records);
    let mut flags_seen = Vec::new();
    let mut event_stamps = Vec::new();
    let mut blocks = Vec::new();
    for (key, value) in records {
        match key[0] {
            KIND_EVENT => {
                let (flags, stamp) = (layout.event)(case, key, value, event_stamps.len() + 1);
                flags_seen.push(flags);
                event_stamps.push(stamp);
            }
            KIND_SNAPSHOT | KIND_TABLE_ROW => {
                flags_seen.push(check_version_1_record(case, key, value));
            }
            KIND_LOG_ENTRY => blocks.push((key, value)),
            other => panic!("{}: unexpected key kind {other}", case.name),
        }
    }
    check_flags_covered(case, &flags_seen);

    let mut offset = 1u64;
    for ((key, block), first) in blocks.iter().zip(&block_starts) {
        let what = format!("{}: log block {first}", case.name);
        assert_eq!(**key, log_key(*first), "{what}: key");
        assert_eq!(offset, *first, "{what}: offsets continue");
        assert_eq!(block[0], layout.block_version, "{what}: block version");
        let (entries, at) = (layout.block_entries)(&what, block);
        for entry in entries {
            let what = format!("{}: log entry {offset}", case.name);
            let (stamp, seq, entity) = (layout.entry_fields)(&what, &entry);
            assert_eq!(
                stamp,
                event_stamps[offset as usize - 1],
                "{what}: timestamp"
            );
            assert_eq!(seq, offset, "{what}: sequence number");
            assert_eq!(entity, case.entity().as_bytes(), "{what}: entity id");
            offset += 1;
        }
        assert_eq!(at + 4, block.len(), "{what}: a CRC-32 after the entries");
        assert_eq!(
            crc32(&[key, &block[..at]]).to_be_bytes(),
            block[at..],
            "{what}: CRC-32 of key and block"
        );
    }
    assert_eq!(offset, head + 1, "{}: every event has an offset", case.name);
}
