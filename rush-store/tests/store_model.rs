//! The store against a model (a `Vec` of events): random operations, including reopening
//! the database, snapshots, deletions and time travel, on sled (sled's fuzz_model idea).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/engine_under_test.rs"]
mod engine_under_test;

use proptest::prelude::*;
use rush_store::{Durability, PersistentActor, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Sum {
    total: i64,
    count: u64,
}

impl PersistentActor for Sum {
    type Event = i64;
    fn apply(&mut self, e: &i64) {
        self.total += e;
        self.count += 1;
    }
}

#[derive(Debug, Clone)]
enum Op {
    Persist(i64),
    Batch(Vec<i64>),
    Snapshot,
    Reopen,
    DeleteToSnapshot,
    TimeTravel(u64),
    Range(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<i32>().prop_map(|v| Op::Persist(i64::from(v))),
        3 => prop::collection::vec(any::<i16>().prop_map(i64::from), 0..20).prop_map(Op::Batch),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Reopen),
        1 => Just(Op::DeleteToSnapshot),
        1 => any::<u64>().prop_map(Op::TimeTravel),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(a, b)| Op::Range(a % 200, b % 200)),
    ]
}

fn state_of(events: &[i64]) -> Sum {
    let mut s = Sum::default();
    events.iter().for_each(|e| s.apply(e));
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn store_matches_its_model(ops in prop::collection::vec(op(), 1..40), encrypted in any::<bool>(), compressed in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let key = encrypted.then_some([3u8; 32]);
        let open = || {
            let mut s = Store::<Sum>::new("model", "m", engine_under_test::at(dir.path()), key.as_ref().map(|k| &k[..]), compressed).unwrap();
            s.set_durability(Durability::Periodic);
            s
        };
        let mut store = open();
        let mut model: Vec<i64> = Vec::new();
        let mut newest_snapshot = 0u64;
        // The store keeps the newest two snapshots by default.
        let mut kept: Vec<u64> = Vec::new();
        let mut deleted_to = 0u64;
        for op in ops {
            match op {
                Op::Persist(v) => {
                    prop_assert_eq!(store.persist(&v).unwrap(), model.len() as u64 + 1);
                    model.push(v);
                }
                Op::Batch(vs) => {
                    store.persist_batch(&vs).unwrap();
                    model.extend(vs);
                }
                Op::Snapshot => {
                    store.snapshot(&state_of(&model)).unwrap();
                    newest_snapshot = model.len() as u64;
                    kept.retain(|s| *s != newest_snapshot);
                    kept.push(newest_snapshot);
                    if kept.len() > 2 {
                        kept.remove(0);
                    }
                }
                Op::Reopen => {
                    drop(store);
                    store = open();
                }
                Op::DeleteToSnapshot => {
                    store.delete_events_to(newest_snapshot).unwrap();
                    deleted_to = deleted_to.max(newest_snapshot);
                }
                Op::TimeTravel(at) => {
                    let at = at % (model.len() as u64 + 1);
                    let base = kept.iter().copied().filter(|s| *s <= at).max().unwrap_or(0);
                    let result = store.recover_at(at);
                    if at == 0 || base >= deleted_to || base == at {
                        let expected = (at > 0 || kept.contains(&0)).then(|| state_of(&model[..at as usize]));
                        prop_assert_eq!(result.unwrap(), expected);
                    } else {
                        // That past state was deleted with the history and snapshots behind it.
                        prop_assert!(matches!(result, Err(rush_store::Error::InvalidArgument(_))), "{:?}", result);
                    }
                }
                Op::Range(a, b) => {
                    let lo = a.max(deleted_to + 1).max(1);
                    let hi = b.min(model.len() as u64);
                    let expected: Vec<i64> = if lo <= hi { model[(lo - 1) as usize..hi as usize].to_vec() } else { vec![] };
                    prop_assert_eq!(store.events(a, b).unwrap(), expected);
                }
            }
            prop_assert_eq!(store.highest_sequence_number(), model.len() as u64);
        }
        let expected = (!model.is_empty() || !kept.is_empty()).then(|| state_of(&model));
        prop_assert_eq!(store.recover().unwrap(), expected);
        prop_assert!(store.verify_integrity().unwrap().is_ok());
    }
}
