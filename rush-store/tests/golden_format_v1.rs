//! Golden files of the on-disk record format v1: records written by that version are kept
//! in `tests/golden/v1/` and every later build must still read them. This is the proof of
//! backward compatibility, so the files are only ever read here.
//!
//! This build writes format v2 events, so it cannot write v1 fixtures any more: the
//! generator lives in `golden_format_v2.rs` and writes `tests/golden/v2/` only. (The v1
//! README still names this test by its old name, `golden_format.rs`; the files it
//! describes are unchanged.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/golden.rs"]
mod golden;

use golden::{
    CASES, COLLECTION, Case, KIND_EVENT, KIND_SNAPSHOT, check_flags_covered, check_record,
    check_through_store, golden_dir, journal_keys, read_fixture,
};
use rush_store::{EventFilter, EventMetadata, EventQuery};
use std::sync::Arc;

const VERSION: u8 = 1;

fn check_fixture(case: Case, records: &[(Vec<u8>, Vec<u8>)]) {
    // The key layout: exactly the events and the snapshots of this entity (the journal's
    // end is its newest event; there is no separate head record).
    let expected_keys = journal_keys(case);
    let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, expected_keys, "{}: keys", case.name);

    let mut flags_seen = Vec::new();
    for (key, value) in records {
        match key[0] {
            KIND_EVENT | KIND_SNAPSHOT => flags_seen.push(check_record(case, VERSION, key, value)),
            other => panic!("{}: unexpected key kind {other}", case.name),
        }
    }
    check_flags_covered(case, &flags_seen);

    // Through the public API, as an application reads it.
    let manager = check_through_store(case, records);

    // A v1 event has no meta block: it reads as type "", no tags, no metadata.
    let store = case.open(manager.clone());
    for envelope in store.events_with_metadata(0, u64::MAX).unwrap() {
        assert_eq!(envelope.event_type, "", "{}", case.name);
        assert!(envelope.tags.is_empty(), "{}", case.name);
        assert_eq!(envelope.metadata, EventMetadata::default(), "{}", case.name);
    }
    // v1 wrote no collection log: its events are invisible to queries until reindexed
    // (FORMAT.md; `tests/reindex.rs`).
    let query =
        EventQuery::<golden::GoldenState>::new(Arc::new(manager), COLLECTION, case.key()).unwrap();
    assert_eq!(query.highest_offset().unwrap(), 0, "{}", case.name);
    assert!(
        query.events(0, &EventFilter::all()).unwrap().is_empty(),
        "{}",
        case.name
    );
}

#[test]
fn golden_v1_records_still_decode() {
    let dir = golden_dir("v1");
    for case in CASES {
        check_fixture(case, &read_fixture(&case.file(&dir)));
    }
}
