//! The checks through the API that every format version's fixture must pass (part of
//! `golden.rs`, which re-exports them).

use super::{
    COLLECTION, Case, Error, GoldenState, KIND_EVENT, MemoryManager, SNAPSHOT_AT, Store,
    expected_events, load, record_timestamp, script, state_after,
};
use std::time::{Duration, UNIX_EPOCH};

/// What every format version's fixture must read back as through `Store`: the events, the
/// recovered state, `recover_at`, the snapshots, `verify_integrity`, the timestamps of the
/// headers, and that a wrong key opens nothing. Returns the loaded database.
pub fn check_through_store(case: Case, records: &[(Vec<u8>, Vec<u8>)]) -> MemoryManager {
    let events = expected_events();
    let head = events.len() as u64;
    let manager = load(records);
    let store = case.open(manager.clone());
    assert_eq!(store.highest_sequence_number(), head, "{}", case.name);
    assert_eq!(store.events(0, u64::MAX).unwrap(), events, "{}", case.name);
    assert_eq!(
        store.recover().unwrap(),
        Some(state_after(&events)),
        "{}",
        case.name
    );
    for seq in [1, SNAPSHOT_AT[0], SNAPSHOT_AT[0] + 1, SNAPSHOT_AT[1], head] {
        assert_eq!(
            store.recover_at(seq).unwrap(),
            Some(state_after(&events[..seq as usize])),
            "{}: recover_at({seq})",
            case.name
        );
    }
    assert_eq!(
        store.snapshot_sequence_numbers().unwrap(),
        SNAPSHOT_AT.to_vec(),
        "{}",
        case.name
    );
    let report = store.verify_integrity().unwrap();
    assert!(report.is_ok(), "{}: {report:?}", case.name);
    assert_eq!(report.events_checked, head, "{}", case.name);
    assert_eq!(
        report.snapshots_checked,
        SNAPSHOT_AT.len() as u64,
        "{}",
        case.name
    );

    // Timestamps come from the headers: same in a batch, never going back. Events are the
    // first records in key order (kind 0x01).
    let with_metadata = store.events_with_metadata(0, u64::MAX).unwrap();
    assert_eq!(with_metadata.len(), events.len(), "{}", case.name);
    let after_2020 = UNIX_EPOCH + Duration::from_secs(1_577_836_800);
    for (envelope, (key, value)) in with_metadata.iter().zip(records) {
        assert!(envelope.timestamp > after_2020, "{}: timestamp", case.name);
        let micros = envelope
            .timestamp
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros();
        assert_eq!(
            key,
            &case.record_key(KIND_EVENT, Some(envelope.sequence_number))
        );
        assert_eq!(u128::from(record_timestamp(value)), micros, "{}", case.name);
    }
    assert!(
        with_metadata
            .windows(2)
            .all(|w| w[0].timestamp <= w[1].timestamp)
    );
    let mut seq = 0;
    for batch in script() {
        let stamps: Vec<_> = with_metadata[seq..seq + batch.len()]
            .iter()
            .map(|e| e.timestamp)
            .collect();
        assert!(stamps.windows(2).all(|w| w[0] == w[1]), "{}", case.name);
        seq += batch.len();
    }

    // The key matters: a wrong one cannot open the encrypted fixtures.
    if case.encrypted {
        let wrong = Store::<GoldenState>::new(
            COLLECTION,
            case.entity(),
            manager.clone(),
            Some(&[9u8; 32]),
            false,
        )
        .unwrap();
        assert!(
            matches!(wrong.events(0, u64::MAX), Err(Error::Decryption { .. })),
            "{}: a wrong key must not open the records",
            case.name
        );
    }
    manager
}
