//! Reading a long journal holds a page of it, not all of it: `events_between` keeps only
//! what falls in its window, and `iter_events` streams any range a page at a time.
//!
//! The allocator's peak is process-wide, so the tests of this file take turns.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use peak_alloc::PeakAlloc;
use rush_store::{MemoryManager, PersistentActor, Store};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::SystemTime;

/// Counts current and peak heap bytes. The workspace forbids `unsafe_code`, so the
/// `GlobalAlloc` impl comes from `peak_alloc`.
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// One measurement at a time: the peak counts every thread's allocations.
static TURN: Mutex<()> = Mutex::new(());

/// Events of about 1 KiB: the journal below is about 16 MiB.
const EVENT_BYTES: usize = 1024;
const EVENTS: usize = 16_000;
/// A page of 512 such events, decoded, plus the engine's copy: well under this.
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

fn line(i: usize) -> String {
    format!("{i:08}{}", "x".repeat(EVENT_BYTES - 8))
}

/// A journal of `EVENTS` events, written in batches.
fn long_journal() -> Store<Log> {
    let mut store =
        Store::<Log>::new("logs", "long", MemoryManager::default(), None, false).unwrap();
    let lines: Vec<String> = (0..EVENTS).map(line).collect();
    for batch in lines.chunks(1000) {
        store.persist_batch(batch).unwrap();
    }
    store
}

/// The peak heap growth while `read` runs, and what it returned.
fn peak_during<T>(read: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let out = read();
    (ALLOC.peak_usage().saturating_sub(before), out)
}

#[test]
fn events_between_holds_a_page_not_the_journal() {
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut store = long_journal();
    let start = SystemTime::now();
    store
        .persist_batch(&["late-1".to_owned(), "late-2".to_owned()])
        .unwrap();
    let end = SystemTime::now();

    let (peak, late) = peak_during(|| store.events_between(start, end).unwrap());

    let late: Vec<&str> = late.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(late, ["late-1", "late-2"]);
    assert!(
        peak < BOUND,
        "events_between over a {} MiB journal held {peak} bytes",
        (EVENTS * EVENT_BYTES) >> 20
    );
}

#[test]
fn iter_events_streams_any_range_a_page_at_a_time() {
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let store = long_journal();

    let (peak, seen) = peak_during(|| {
        let mut seen = 0usize;
        for (expected, envelope) in (1u64..).zip(store.iter_events(0, u64::MAX)) {
            let envelope = envelope.unwrap();
            assert_eq!(envelope.sequence_number, expected);
            assert_eq!(envelope.event, line(seen));
            seen += 1;
        }
        seen
    });

    assert_eq!(seen, EVENTS);
    assert!(
        peak < BOUND,
        "iterating a {} MiB journal held {peak} bytes",
        (EVENTS * EVENT_BYTES) >> 20
    );
    // A bounded range ends where asked, and an empty one is empty.
    let middle: Vec<u64> = store
        .iter_events(5000, 5002)
        .map(|e| e.unwrap().sequence_number)
        .collect();
    assert_eq!(middle, [5000, 5001, 5002]);
    assert_eq!(store.iter_events(7, 6).count(), 0);
    assert_eq!(store.iter_events(EVENTS as u64 + 1, u64::MAX).count(), 0);
}
