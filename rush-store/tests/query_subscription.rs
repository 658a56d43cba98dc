//! Subscriptions: catch up from the journal, then live, with no gap and no duplicate at the
//! switch-over, under concurrent writers; a slow subscriber never holds writers back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/backends.rs"]
mod backends;
use backends::engine_under_test;

use backends::each_backend;
use rush_store::{Durability, EventFilter, EventQuery, PersistentActor, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Counter {
    total: u64,
}

impl PersistentActor for Counter {
    type Event = u64;
    fn apply(&mut self, n: &u64) {
        self.total += n;
    }
    fn event_tags(n: &u64) -> Vec<String> {
        if n.is_multiple_of(2) {
            vec!["even".into()]
        } else {
            Vec::new()
        }
    }
}

const WRITERS: u64 = 4;
const PER_WRITER: u64 = 150;

fn write_concurrently(
    backend: &std::sync::Arc<dyn rush_store::Backend>,
    batch: u64,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let backend = backend.clone();
            std::thread::spawn(move || {
                let mut store = Store::<Counter>::with_backend(
                    "counters",
                    &format!("w{w}"),
                    backend,
                    None,
                    false,
                )
                .unwrap();
                store.set_durability(Durability::Periodic);
                for i in 0..PER_WRITER / batch {
                    let events: Vec<u64> = (0..batch).map(|j| i * batch + j).collect();
                    store.persist_batch(&events).unwrap();
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_from_catching_up_to_live_has_no_gap_and_no_duplicate() {
    for db in each_backend() {
        // History before the subscription...
        let mut early =
            Store::<Counter>::with_backend("counters", "early", db.backend.clone(), None, false)
                .unwrap();
        for n in 0..100 {
            early.persist(&n).unwrap();
        }
        let query = EventQuery::<Counter>::new(db.backend.clone(), "counters", None).unwrap();
        let mut subscription = query.subscribe(1, EventFilter::all());
        // ...and writers racing it while it catches up and goes live.
        let writers = write_concurrently(&db.backend, 3);
        let total = 100 + WRITERS * PER_WRITER;
        let mut next_seq: HashMap<String, u64> = HashMap::new();
        for expected_offset in 1..=total {
            let event = tokio::time::timeout(Duration::from_secs(20), subscription.next())
                .await
                .expect("subscription stalled")
                .unwrap()
                .unwrap();
            assert_eq!(
                event.offset, expected_offset,
                "{}: gap or duplicate",
                db.name
            );
            let seq = next_seq.entry(event.entity_id.clone()).or_insert(1);
            assert_eq!(event.sequence_number, *seq, "{}: per-entity order", db.name);
            *seq += 1;
        }
        for writer in writers {
            writer.join().unwrap();
        }
        // Nothing beyond what was written.
        let extra = tokio::time::timeout(Duration::from_millis(200), subscription.next()).await;
        assert!(
            extra.is_err(),
            "{}: unexpected extra event {extra:?}",
            db.name
        );
        assert_eq!(
            next_seq.values().sum::<u64>() - next_seq.len() as u64,
            total
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_from_an_offset_with_a_filter_sees_only_matching_later_events() {
    for db in each_backend() {
        let mut store =
            Store::<Counter>::with_backend("counters", "a", db.backend.clone(), None, false)
                .unwrap();
        store.persist_batch(&[1, 2, 3, 4]).unwrap();
        let query = EventQuery::<Counter>::new(db.backend.clone(), "counters", None).unwrap();
        let mut evens = query.subscribe(3, EventFilter::all().tag("even"));
        store.persist_batch(&[5, 6]).unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            let event = tokio::time::timeout(Duration::from_secs(5), evens.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            got.push((event.offset, event.event));
        }
        assert_eq!(got, vec![(4, 4), (6, 6)], "{}", db.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_never_holds_writers_back() {
    for db in each_backend() {
        let query = EventQuery::<Counter>::new(db.backend.clone(), "counters", None).unwrap();
        let mut idle = query.subscribe(1, EventFilter::all());
        // Writers finish although nobody reads: the journal is the only buffer.
        let writers = write_concurrently(&db.backend, 10);
        let finished = tokio::task::spawn_blocking(move || {
            for writer in writers {
                writer.join().unwrap();
            }
        });
        tokio::time::timeout(Duration::from_secs(30), finished)
            .await
            .unwrap()
            .unwrap();
        // The late reader then catches up on everything, in order.
        let mut offsets = Vec::new();
        while offsets.len() < (WRITERS * PER_WRITER) as usize {
            offsets.push(idle.next().await.unwrap().unwrap().offset);
        }
        assert!(
            offsets.iter().copied().eq(1..=WRITERS * PER_WRITER),
            "{}",
            db.name
        );
    }
}

/// A subscription reads the next page while it hands out the current one; an error on
/// the page read ahead still comes after every event before it, in order, and ends the
/// stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_on_the_page_read_ahead_comes_after_the_events_before_it() {
    use rush_store::{Backend, WriteBatch, WriteOp};
    let engine: std::sync::Arc<dyn Backend> = std::sync::Arc::new(engine_under_test::fresh());
    let mut store =
        Store::<Counter>::with_backend("counters", "a", engine.clone(), None, false).unwrap();
    let events: Vec<u64> = (1..=3000).collect();
    store.persist_batch(&events).unwrap();
    // Damage the record of sequence number 2500 (offset 2500: one writer, one entity).
    let mut key = vec![1u8];
    for part in ["counters", "a"] {
        key.extend_from_slice(&(part.len() as u16).to_be_bytes());
        key.extend_from_slice(part.as_bytes());
    }
    key.extend_from_slice(&2500u64.to_be_bytes());
    engine_under_test::off_runtime(|| {
        let mut damaged = engine.get(&key).unwrap().expect("the record exists");
        let last = damaged.len() - 1;
        damaged[last] ^= 0xFF;
        engine
            .commit(&WriteBatch {
                ops: vec![WriteOp::Put {
                    key,
                    value: damaged,
                }],
                ..WriteBatch::default()
            })
            .unwrap()
            .unwrap();
    });

    let query = EventQuery::<Counter>::new(engine, "counters", None).unwrap();
    let mut subscription = query.subscribe(1, EventFilter::all());
    let mut delivered = Vec::new();
    let error = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("no hang");
        match next {
            Some(Ok(event)) => delivered.push(event.offset),
            Some(Err(error)) => break error,
            None => panic!("ended without the error"),
        }
    };
    // Whole pages before the damaged one (1,024 entries each), in order, nothing after it.
    assert_eq!(delivered.len(), 2048);
    assert!(delivered.iter().copied().eq(1..=delivered.len() as u64));
    assert!(
        matches!(&error, rush_store::Error::Corrupted { record, .. } if record.contains("event 2500")),
        "{error:?}"
    );
    assert!(
        subscription.next().await.is_none(),
        "the stream ends after its error"
    );
}
