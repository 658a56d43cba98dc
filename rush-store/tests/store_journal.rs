//! Appending and reading the journal: sequence numbers, atomic batches, ranges, envelopes,
//! two writers, reopening. Every test runs on the memory and the sled backend.
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

use backends::each_backend;
use bank::{BankAccount, BankEvent, deposit, opened};
use rush_store::{Durability, Error, MAX_EVENT_SIZE, Store};
use std::time::{Duration, SystemTime};

fn deposits(n: u64) -> Vec<BankEvent> {
    (1..=n).map(|i| deposit(1.0, i as f64)).collect()
}

#[test]
fn sequence_numbers_start_at_one_and_are_contiguous() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("a", None, false);
        assert_eq!(store.persist(&opened("a", 0.0)).unwrap(), 1, "{}", db.name);
        assert_eq!(store.persist_batch(&deposits(3)).unwrap(), 4);
        assert_eq!(store.persist(&deposit(1.0, 4.0)).unwrap(), 5);
        let seqs: Vec<u64> = store
            .events_with_metadata(0, u64::MAX)
            .unwrap()
            .iter()
            .map(|e| e.sequence_number)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(store.persist_batch(&[]).unwrap(), 5);
    }
}

#[test]
fn ranges_are_inclusive_and_out_of_range_is_empty() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("a", None, true);
        store.persist_batch(&deposits(10)).unwrap();
        assert_eq!(store.events(0, u64::MAX).unwrap(), deposits(10));
        assert_eq!(store.events(3, 5).unwrap(), deposits(10)[2..5].to_vec());
        assert_eq!(store.events(10, 10).unwrap().len(), 1);
        assert!(store.events(11, 20).unwrap().is_empty());
        assert!(store.events(5, 4).unwrap().is_empty());
        assert_eq!(
            store.last_events_from(3).unwrap(),
            deposits(10)[7..].to_vec()
        );
        assert_eq!(store.last_events_from(100).unwrap(), deposits(10));
        assert!(store.last_events_from(0).unwrap().is_empty());
    }
}

#[test]
fn a_batch_with_one_bad_event_writes_nothing() {
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct Blob(Vec<u8>);
    #[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
    struct Bag(usize);
    impl rush_store::PersistentActor for Bag {
        type Event = Blob;
        fn apply(&mut self, e: &Blob) {
            self.0 += e.0.len();
        }
    }
    for db in each_backend() {
        let mut store =
            Store::<Bag>::with_backend("bags", "b", db.backend.clone(), None, false).unwrap();
        store.persist(&Blob(vec![1; 10])).unwrap();
        let batch = [
            Blob(vec![2; 10]),
            Blob(vec![3; MAX_EVENT_SIZE + 1]),
            Blob(vec![4; 10]),
        ];
        let err = store.persist_batch(&batch).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(ref m) if m.contains("limit")),
            "{err}"
        );
        assert_eq!(store.events(0, u64::MAX).unwrap().len(), 1);
        assert_eq!(store.highest_sequence_number(), 1);
        assert_eq!(store.persist(&Blob(vec![5; 10])).unwrap(), 2);
    }
}

#[test]
fn envelopes_carry_timestamps_and_can_be_selected_by_time() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("t", None, false);
        let before = SystemTime::now() - Duration::from_millis(1);
        store.persist_batch(&deposits(2)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let middle = SystemTime::now();
        // Stored timestamps are whole microseconds: the next event must be stamped clearly
        // after `middle`, or truncation can make it read as earlier than it.
        std::thread::sleep(Duration::from_millis(2));
        store.persist(&deposit(1.0, 3.0)).unwrap();
        let after = SystemTime::now() + Duration::from_millis(1);
        let all = store.events_with_metadata(0, u64::MAX).unwrap();
        assert!(
            all.iter()
                .all(|e| e.timestamp >= before && e.timestamp <= after)
        );
        let late = store.events_between(middle, after).unwrap();
        assert_eq!(
            late.iter().map(|e| e.sequence_number).collect::<Vec<_>>(),
            vec![3]
        );
        assert_eq!(store.events_between(before, middle).unwrap().len(), 2);
    }
}

/// Stored timestamps are whole microseconds, so the window is compared at that precision:
/// an event stamped in the same microsecond as `start` is inside it, whatever the
/// nanoseconds of `start` (a window opened just before a persist kept missing it).
#[test]
fn a_window_starting_within_an_events_microsecond_holds_it() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("t", None, false);
        store.persist(&deposit(1.0, 1.0)).unwrap();
        let stamped = store.events_with_metadata(0, u64::MAX).unwrap()[0].timestamp;
        let start = stamped + Duration::from_nanos(500);
        let end = stamped + Duration::from_secs(1);
        let within = store.events_between(start, end).unwrap();
        assert_eq!(within.len(), 1, "{start:?} .. {end:?} missed {stamped:?}");
        assert!(
            store
                .events_between(stamped + Duration::from_micros(1), end)
                .unwrap()
                .is_empty()
        );
    }
}

#[test]
fn a_stale_writer_gets_a_conflict_and_writes_nothing() {
    for db in each_backend() {
        let mut first = db.open::<BankAccount>("shared", None, false);
        let mut second = db.open::<BankAccount>("shared", None, false);
        first.persist(&opened("shared", 10.0)).unwrap();
        let err = second.persist(&opened("shared", 99.0)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Conflict {
                    expected: 0,
                    actual: 1
                }
            ),
            "{err}"
        );
        let err = second.persist_batch(&deposits(3)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Conflict {
                    expected: 0,
                    actual: 1
                }
            ),
            "{err}"
        );
        assert_eq!(
            first.events(0, u64::MAX).unwrap(),
            vec![opened("shared", 10.0)]
        );
        // Explicit versions: the caller re-read the state and says what it expects.
        assert_eq!(second.persist_expected(1, &deposits(1)).unwrap(), 2);
        assert!(matches!(
            first.persist(&deposit(1.0, 1.0)),
            Err(Error::Conflict {
                expected: 1,
                actual: 2
            })
        ));
        assert!(matches!(
            second.persist_expected(5, &deposits(1)),
            Err(Error::Conflict {
                expected: 5,
                actual: 2
            })
        ));
        // A stale snapshot is refused too: it would not match the journal.
        assert!(matches!(
            first.snapshot(&BankAccount::default()),
            Err(Error::Conflict { .. })
        ));
        assert_eq!(first.events(0, u64::MAX).unwrap().len(), 2);
    }
}

#[test]
fn many_threads_racing_on_one_entity_never_overwrite_each_other() {
    for db in each_backend() {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let backend = db.backend.clone();
                std::thread::spawn(move || {
                    let mut written = Vec::new();
                    let mut store = Store::<BankAccount>::with_backend(
                        "accounts", "race", backend, None, false,
                    )
                    .unwrap();
                    store.set_durability(Durability::Periodic);
                    while written.len() < 50 {
                        let head = store.highest_sequence_number();
                        let event = deposit(t as f64, (t * 1000 + written.len()) as f64);
                        match store.persist_expected(head, std::slice::from_ref(&event)) {
                            Ok(seq) => written.push((seq, event)),
                            Err(Error::Conflict { actual, .. }) => {
                                // Re-read and retry, as an optimistic writer does.
                                let _ = actual;
                                store = store
                                    .database()
                                    .store::<BankAccount>("accounts", "race")
                                    .unwrap();
                                store.set_durability(Durability::Periodic);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    written
                })
            })
            .collect();
        let mut all: Vec<(u64, BankEvent)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_by_key(|(seq, _)| *seq);
        let store = db.open::<BankAccount>("race", None, false);
        assert_eq!(
            all.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            (1..=200).collect::<Vec<_>>()
        );
        assert_eq!(
            store.events(0, u64::MAX).unwrap(),
            all.into_iter().map(|(_, e)| e).collect::<Vec<_>>()
        );
    }
}

#[test]
fn everything_is_there_after_reopening() {
    for mut db in each_backend() {
        {
            let mut store = db.open::<BankAccount>("r", Some(bank::KEY), true);
            store.persist(&opened("r", 5.0)).unwrap();
            store.persist_batch(&deposits(20)).unwrap();
        }
        db.reopen();
        let mut store = db.open::<BankAccount>("r", Some(bank::KEY), true);
        assert_eq!(store.highest_sequence_number(), 21, "{}", db.name);
        assert_eq!(store.persist(&deposit(1.0, 21.0)).unwrap(), 22);
        assert_eq!(store.events(0, u64::MAX).unwrap().len(), 22);
    }
}

#[test]
fn entities_with_look_alike_ids_are_separate() {
    for db in each_backend() {
        let pairs = [
            ("a", "bc"),
            ("ab", "c"),
            ("a\0", "b"),
            ("a", "\0b"),
            ("a/b", "c"),
            ("a", "b/c"),
        ];
        for (i, (collection, entity)) in pairs.iter().enumerate() {
            let mut store = Store::<BankAccount>::with_backend(
                collection,
                entity,
                db.backend.clone(),
                None,
                false,
            )
            .unwrap();
            store.persist_batch(&deposits(i as u64 + 1)).unwrap();
        }
        for (i, (collection, entity)) in pairs.iter().enumerate() {
            let store = Store::<BankAccount>::with_backend(
                collection,
                entity,
                db.backend.clone(),
                None,
                false,
            )
            .unwrap();
            assert_eq!(
                store.events(0, u64::MAX).unwrap(),
                deposits(i as u64 + 1),
                "{collection:?}/{entity:?}"
            );
        }
    }
}

#[test]
fn bad_ids_are_clear_errors() {
    for db in each_backend() {
        let open = |c: &str, e: &str| {
            Store::<BankAccount>::with_backend(c, e, db.backend.clone(), None, false).map(|_| ())
        };
        assert!(matches!(open("", "e"), Err(Error::InvalidArgument(_))));
        assert!(matches!(open("c", ""), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            open("c", &"x".repeat(rush_store::MAX_ID_LEN + 1)),
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[test]
fn periodic_durability_still_reads_back_and_survives_a_clean_reopen() {
    for mut db in each_backend() {
        {
            let mut store = db.open::<BankAccount>("p", None, false);
            store.set_durability(Durability::Periodic);
            store.persist_batch(&deposits(100)).unwrap();
            assert_eq!(store.events(0, u64::MAX).unwrap().len(), 100);
            db.backend.flush().unwrap();
        }
        db.reopen();
        let store = db.open::<BankAccount>("p", None, false);
        assert_eq!(store.recover().unwrap().unwrap().transaction_count, 100);
    }
}

#[test]
fn metrics_count_what_this_handle_did() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("m", None, true);
        assert_eq!(store.metrics().events_persisted, 0);
        assert!(store.metrics().last_event_timestamp.is_none());
        store.persist(&opened("m", 1.0)).unwrap();
        store.persist_batch(&deposits(4)).unwrap();
        store.snapshot(&BankAccount::default()).unwrap();
        let m = store.metrics();
        assert_eq!((m.events_persisted, m.snapshots_created), (5, 1));
        assert!(m.total_storage_bytes > 0);
        assert!(m.avg_persist_time > Duration::ZERO);
        assert!(m.last_event_timestamp.is_some());
        let stats = store.compression_stats();
        assert_eq!(stats.compressed_events + stats.uncompressed_events, 6);
    }
}

#[tokio::test]
async fn health_check_probes_the_database() {
    for db in each_backend() {
        let store = db.open::<BankAccount>("h", None, false);
        let report = store.health_check().await.unwrap();
        assert_eq!(
            report.status,
            rush_store::HealthStatus::Healthy,
            "{}",
            report.message
        );
        // The probe leaves nothing behind in the entity.
        assert!(store.events(0, u64::MAX).unwrap().is_empty());
        assert_eq!(store.recover().unwrap(), None);
    }
}

#[test]
fn long_replays_read_ahead_and_still_catch_gaps_and_damage() {
    use rush_store::{WriteBatch, WriteOp};
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("long", Some(bank::KEY), true);
        store.set_durability(Durability::Periodic);
        store.persist(&opened("long", 0.0)).unwrap();
        for chunk in deposits(10_000).chunks(1000) {
            store.persist_batch(chunk).unwrap();
        }
        let recovered = store.recover().unwrap().unwrap();
        assert_eq!(
            (recovered.transaction_count, recovered.balance),
            (10_000, 10_000.0),
            "{}",
            db.name
        );
        assert_eq!(store.events(0, u64::MAX).unwrap().len(), 10_001);

        let events = db.backend.scan(&[1], &[2], usize::MAX, false).unwrap();
        let (gap_key, gap_value) = events[7000].clone();
        let remove = WriteBatch {
            guards: vec![],
            ops: vec![WriteOp::Delete {
                key: gap_key.clone(),
            }],
            ..Default::default()
        };
        db.backend.commit(&remove).unwrap().unwrap();
        let err = store.recover().unwrap_err();
        assert!(
            matches!(&err, Error::Corrupted { record, .. } if record.contains("event 7001")),
            "{err}"
        );

        let mut damaged = gap_value.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 1;
        let put = |value: Vec<u8>| WriteBatch {
            guards: vec![],
            ops: vec![WriteOp::Put {
                key: gap_key.clone(),
                value,
            }],
            ..Default::default()
        };
        db.backend.commit(&put(damaged)).unwrap().unwrap();
        assert!(matches!(store.recover(), Err(Error::Corrupted { .. })));

        db.backend.commit(&put(gap_value)).unwrap().unwrap();
        assert_eq!(store.recover().unwrap().unwrap().transaction_count, 10_000);
        // A range that stops early in a long journal.
        assert_eq!(
            store.events(5000, 9000).unwrap(),
            deposits(10_000)[4998..8999].to_vec()
        );
    }
}
