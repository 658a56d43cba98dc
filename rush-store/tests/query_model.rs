//! The collection log against a model: random appends of random batch sizes to random
//! entities, from several handles, with reopens and random read pages. Invariants: offsets
//! are exactly 1..=N in commit order, each entity's events come in sequence order, every
//! persisted event appears exactly once, and paging from any offset agrees with one read.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/engine_under_test.rs"]
mod engine_under_test;

use proptest::prelude::*;
use rush_store::{Backend, EventFilter, EventQuery, PersistentActor, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Sum {
    total: i64,
}

impl PersistentActor for Sum {
    type Event = i64;
    fn apply(&mut self, e: &i64) {
        self.total += e;
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append { entity: u8, events: Vec<i64> },
    Reopen,
    Page { from: u64, limit: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, prop::collection::vec(any::<i16>().prop_map(i64::from), 1..8))
            .prop_map(|(entity, events)| Op::Append { entity, events }),
        1 => Just(Op::Reopen),
        2 => (0u64..60, 1usize..10).prop_map(|(from, limit)| Op::Page { from, limit }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn the_log_matches_commit_order(ops in prop::collection::vec(op(), 1..30), encrypted in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let key = encrypted.then_some(&[4u8; 32][..]);
        let mut backend: Arc<dyn Backend> = Arc::new(engine_under_test::at(dir.path()));
        // The model: (entity, seq, event) in commit order.
        let mut model: Vec<(String, u64, i64)> = Vec::new();
        for op in ops {
            match op {
                Op::Append { entity, events } => {
                    let id = format!("e{entity}");
                    let mut store = Store::<Sum>::with_backend("sums", &id, backend.clone(), key, true).unwrap();
                    let first = store.highest_sequence_number() + 1;
                    store.persist_batch(&events).unwrap();
                    model.extend(events.iter().enumerate().map(|(i, e)| (id.clone(), first + i as u64, *e)));
                }
                Op::Reopen => {
                    drop(backend);
                    backend = Arc::new(engine_under_test::at(dir.path()));
                }
                Op::Page { from, limit } => {
                    let query = EventQuery::<Sum>::new(backend.clone(), "sums", key).unwrap();
                    let page = query.read(from, &EventFilter::all(), limit).unwrap();
                    let start = from.max(1);
                    let expected: Vec<u64> = (start..=model.len() as u64).take(limit).collect();
                    prop_assert_eq!(page.events.iter().map(|e| e.offset).collect::<Vec<_>>(), expected.clone());
                    prop_assert_eq!(page.next_offset, expected.last().map_or(start, |last| last + 1));
                }
            }
        }
        let query = EventQuery::<Sum>::new(backend.clone(), "sums", key).unwrap();
        let all = query.events(1, &EventFilter::all()).unwrap();
        let seen: Vec<(String, u64, i64)> = all.iter().map(|e| (e.entity_id.clone(), e.sequence_number, e.event)).collect();
        prop_assert_eq!(&seen, &model);
        prop_assert!(all.iter().map(|e| e.offset).eq(1..=model.len() as u64));
        prop_assert_eq!(query.highest_offset().unwrap(), model.len() as u64);
    }
}
