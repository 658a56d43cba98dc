//! Querying a large collection holds a page of its log, not the collection:
//! `EventQuery::iter` reads one page at a time, whatever the size of the collection.
//!
//! One test in this file: the allocator's peak is process-wide.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use peak_alloc::PeakAlloc;
use rush_store::{EventFilter, EventQuery, MemoryManager, PersistentActor, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Counts current and peak heap bytes. The workspace forbids `unsafe_code`, so the
/// `GlobalAlloc` impl comes from `peak_alloc`.
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Events of about 1 KiB over a few entities: the collection is about 16 MiB.
const EVENT_BYTES: usize = 1024;
const ENTITIES: usize = 4;
const EVENTS_EACH: usize = 4000;
/// A page of 512 such events, decoded, plus the engine's copies: well under this.
const BOUND: usize = 4 * 1024 * 1024;

#[derive(Default, Clone, Serialize, Deserialize)]
struct Log {
    lines: u64,
}

impl PersistentActor for Log {
    type Event = String;
    fn apply(&mut self, _: &String) {
        self.lines += 1;
    }
}

fn line(entity: usize, i: usize) -> String {
    format!("{entity}:{i:08}{}", "x".repeat(EVENT_BYTES - 10))
}

#[test]
fn iterating_a_large_collection_holds_a_page_not_the_collection() {
    let backend = MemoryManager::default();
    for entity in 0..ENTITIES {
        let mut store =
            Store::<Log>::new("logs", &format!("e{entity}"), backend.clone(), None, false).unwrap();
        let lines: Vec<String> = (0..EVENTS_EACH).map(|i| line(entity, i)).collect();
        for batch in lines.chunks(500) {
            store.persist_batch(batch).unwrap();
        }
    }
    let query = EventQuery::<Log>::new(Arc::new(backend), "logs", None).unwrap();

    let before = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let mut seen = 0usize;
    let mut of_e2 = 0usize;
    for (offset, event) in (1u64..).zip(query.iter(1, EventFilter::all())) {
        let event = event.unwrap();
        assert_eq!(event.offset, offset);
        seen += 1;
        of_e2 += usize::from(event.entity_id == "e2");
    }
    let peak = ALLOC.peak_usage().saturating_sub(before);

    assert_eq!(seen, ENTITIES * EVENTS_EACH);
    assert_eq!(of_e2, EVENTS_EACH);
    assert!(
        peak < BOUND,
        "iterating a {} MiB collection held {peak} bytes",
        (ENTITIES * EVENTS_EACH * EVENT_BYTES) >> 20
    );

    // A filtered iteration from an offset reads the same events as the collected form.
    let filter = EventFilter::all().entity("e3");
    let from = 2 * 500 + 1;
    let streamed: Vec<_> = query
        .iter(from, filter.clone())
        .map(|e| e.unwrap().sequence_number)
        .collect();
    let collected: Vec<_> = query
        .events(from, &filter)
        .unwrap()
        .into_iter()
        .map(|e| e.sequence_number)
        .collect();
    assert_eq!(streamed, collected);
    assert_eq!(streamed.len(), EVENTS_EACH);
}
