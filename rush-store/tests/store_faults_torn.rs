//! Torn batches: an engine without atomic batches (or one that dies in the middle of one)
//! applies a prefix of a batch's writes and reports an error. sled's `apply_batch` is
//! atomic, so this cannot happen on the default backend; these tests pin down what the
//! store still guarantees on an engine where it can (`Faulty::tear_next_commit`):
//!
//! - every acknowledged event stays, unchanged, and each journal stays a gap-free prefix:
//!   a torn append leaves a prefix of its (unacknowledged) events, never a gap, because an
//!   append's writes are its events in sequence order;
//! - the collection log stays gap-free and never points at a missing event: its block is
//!   written after the events, so a tear drops it whole. The events of the torn append that
//!   landed have no offset (queries and subscriptions miss them), and `verify_integrity`
//!   reports exactly those, as having no offset in the collection log;
//! - a torn snapshot never removes the older snapshots without storing the new one, and a
//!   torn `delete_events_to` never removes an event without raising the deletion mark
//!   first (both write their "new" key first), so recovery and reads never see a gap;
//! - the handle that saw the error is poisoned; a new handle continues after what landed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/backends.rs"]
mod backends;
#[path = "support/bank.rs"]
mod bank;

use backends::{Faulty, each_backend};
use bank::{BankAccount, BankEvent, KEY, deposit};
use rush_store::{Backend, Error, EventFilter, EventQuery, PersistentActor, Store};
use std::sync::Arc;

const ACKED: u64 = 10;
const TORN_BATCH: usize = 5;

fn open(backend: &Arc<dyn Backend>, entity: &str) -> Store<BankAccount> {
    Store::with_backend("accounts", entity, backend.clone(), Some(KEY), true).unwrap()
}

fn event(i: u64) -> BankEvent {
    #[allow(clippy::cast_precision_loss)]
    let i = i as f64;
    deposit(1.0, i)
}

fn offsets(backend: &Arc<dyn Backend>) -> Vec<(u64, String, u64)> {
    let query = EventQuery::<BankAccount>::new(backend.clone(), "accounts", Some(KEY)).unwrap();
    query
        .events(1, &EventFilter::all())
        .unwrap()
        .into_iter()
        .map(|e| (e.offset, e.entity_id, e.sequence_number))
        .collect()
}

#[test]
fn a_torn_append_leaves_a_gap_free_prefix_and_verify_reports_its_events_as_orphans() {
    for keep in 0..=TORN_BATCH {
        for db in each_backend() {
            let faulty = Faulty::new(db.backend.clone());
            let backend: Arc<dyn Backend> = faulty.clone();
            let mut store = open(&backend, "torn");
            let acked: Vec<BankEvent> = (1..=ACKED).map(event).collect();
            for pair in acked.chunks(2) {
                store.persist_batch(pair).unwrap();
            }
            let torn_events: Vec<BankEvent> = (100..100 + TORN_BATCH as u64).map(event).collect();

            faulty.tear_next_commit(keep);
            let err = store.persist_batch(&torn_events).unwrap_err();
            assert_eq!(faulty.injected(), 1, "{}: the tear fired", db.name);
            assert!(
                matches!(&err, Error::Storage { message, .. } if message.contains("torn write") && message.contains("No space left")),
                "{}: {err}",
                db.name
            );
            assert!(matches!(store.persist(&event(0)), Err(Error::Poisoned(_))));
            faulty.heal();

            let mut fresh = open(&backend, "torn");
            let landed = ACKED + keep as u64;
            assert_eq!(fresh.highest_sequence_number(), landed, "{}", db.name);
            let mut expected = acked.clone();
            expected.extend_from_slice(&torn_events[..keep]);
            assert_eq!(fresh.events(0, u64::MAX).unwrap(), expected, "{}", db.name);
            let mut state = BankAccount::default();
            expected.iter().for_each(|e| state.apply(e));
            assert_eq!(fresh.recover().unwrap().unwrap(), state, "{}", db.name);

            // The log lost the torn block whole: gap-free, and only acknowledged events.
            let log = offsets(&backend);
            let acked_log: Vec<(u64, String, u64)> =
                (1..=ACKED).map(|n| (n, "torn".to_owned(), n)).collect();
            assert_eq!(log, acked_log, "{}", db.name);

            let orphans = |report: &rush_store::IntegrityReport| -> Vec<String> {
                report
                    .integrity_errors
                    .iter()
                    .inspect(|e| {
                        assert!(
                            e.reason.contains("no offset in the collection log"),
                            "{}: only orphans are reported: {e}",
                            db.name
                        );
                    })
                    .map(|e| e.record.clone())
                    .collect()
            };
            let report = fresh.verify_integrity().unwrap();
            let expected_orphans: Vec<String> = (ACKED + 1..=landed)
                .map(|seq| format!("event {seq} of \"accounts\"/\"torn\""))
                .collect();
            assert_eq!(orphans(&report), expected_orphans, "{}", db.name);

            // A new handle goes on after what landed; the log stays gap-free.
            assert_eq!(fresh.persist(&event(200)).unwrap(), landed + 1);
            let log = offsets(&backend);
            assert_eq!(
                log.last().unwrap(),
                &(ACKED + 1, "torn".to_owned(), landed + 1)
            );
            assert_eq!(
                orphans(&fresh.verify_integrity().unwrap()),
                expected_orphans
            );
        }
    }
}

#[test]
fn a_torn_snapshot_never_removes_older_snapshots_without_the_new_one() {
    for keep in 0..=2 {
        for db in each_backend() {
            let faulty = Faulty::new(db.backend.clone());
            let backend: Arc<dyn Backend> = faulty.clone();
            let mut store = open(&backend, "snap");
            store.set_snapshots_to_keep(1).unwrap();
            let mut state = BankAccount::default();
            for i in 1..=10 {
                let e = event(i);
                store.persist(&e).unwrap();
                state.apply(&e);
                if i == 5 {
                    store.snapshot(&state).unwrap();
                }
            }
            faulty.tear_next_commit(keep);
            assert!(matches!(store.snapshot(&state), Err(Error::Storage { .. })));
            faulty.heal();
            let mut fresh = open(&backend, "snap");
            // The batch is [new snapshot, delete older]: a prefix never loses both.
            let snapshots = fresh.snapshot_sequence_numbers().unwrap();
            let expected: Vec<u64> = match keep {
                0 => vec![5],
                1 => vec![5, 10],
                _ => vec![10],
            };
            assert_eq!(snapshots, expected, "{} keep {keep}", db.name);
            // Deleting history covered by what is stored keeps recovery exact.
            fresh.delete_events_to(*snapshots.last().unwrap()).unwrap();
            assert_eq!(fresh.recover().unwrap().unwrap(), state, "{}", db.name);
            assert!(fresh.verify_integrity().unwrap().is_ok(), "{}", db.name);
        }
    }
}

#[test]
fn a_torn_history_deletion_raises_the_mark_before_removing_any_event() {
    for keep in [0, 1, 4, 21] {
        for db in each_backend() {
            let faulty = Faulty::new(db.backend.clone());
            let backend: Arc<dyn Backend> = faulty.clone();
            let mut store = open(&backend, "del");
            let mut state = BankAccount::default();
            for i in 1..=20 {
                let e = event(i);
                store.persist(&e).unwrap();
                state.apply(&e);
            }
            store.snapshot(&state).unwrap();
            faulty.tear_next_commit(keep);
            let torn = store.delete_events_to(15);
            faulty.heal();
            // The batch is [mark, 15 deletes]; keeping all 16 still reports the error.
            assert!(torn.is_err(), "{} keep {keep}", db.name);
            let mut fresh = open(&backend, "del");
            let mark = fresh.deleted_to().unwrap();
            assert_eq!(mark, if keep == 0 { 0 } else { 15 }, "{}", db.name);
            // Whatever landed, reads see a gap-free journal from the mark on.
            let events = fresh.events(0, u64::MAX).unwrap();
            assert_eq!(events.len() as u64, 20 - mark, "{}", db.name);
            assert_eq!(fresh.recover().unwrap().unwrap(), state, "{}", db.name);
            // Running the deletion again finishes it.
            fresh.delete_events_to(15).unwrap();
            assert_eq!(fresh.events(0, u64::MAX).unwrap().len(), 5);
            let report = fresh.verify_integrity().unwrap();
            assert!(report.is_ok(), "{}: {report:?}", db.name);
        }
    }
}
