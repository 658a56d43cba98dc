//! Snapshots, recovery, time travel, retention and deletion of covered history.
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
use bank::{BankAccount, deposit, opened};
use rush_store::{Backend, Error, PersistentActor, Store, WriteBatch, WriteOp};

fn account_with(store: &mut Store<BankAccount>, deposits: u64, snapshot_every: u64) -> BankAccount {
    let mut account = BankAccount::default();
    let open = opened("acc", 0.0);
    store.persist(&open).unwrap();
    account.apply(&open);
    for i in 1..=deposits {
        let event = account.deposit(10.0).unwrap();
        store.persist(&event).unwrap();
        account.apply(&event);
        if snapshot_every > 0 && i % snapshot_every == 0 {
            store.snapshot(&account).unwrap();
        }
    }
    account
}

#[test]
fn recover_is_none_for_an_entity_never_written() {
    for db in each_backend() {
        let store = db.open::<BankAccount>("nobody", None, false);
        assert_eq!(store.recover().unwrap(), None);
        assert_eq!(store.recover_at(0).unwrap(), None);
    }
}

#[test]
fn recovery_uses_the_newest_snapshot_and_the_events_after_it() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("s", None, true);
        let expected = account_with(&mut store, 100, 25);
        store.persist(&deposit(5.0, 1005.0)).unwrap();
        let recovered = store.recover().unwrap().unwrap();
        assert_eq!(recovered.balance, 1005.0);
        assert_eq!(recovered.transaction_count, expected.transaction_count + 1);
        // Proof that the snapshot is used: a state that events alone cannot produce.
        let mut marked = expected.clone();
        marked.account_id = "from-snapshot".into();
        store.snapshot(&marked).unwrap();
        assert_eq!(
            store.recover().unwrap().unwrap().account_id,
            "from-snapshot"
        );
    }
}

#[test]
fn only_the_newest_k_snapshots_are_kept() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("k", None, false);
        store.set_snapshots_to_keep(3).unwrap();
        account_with(&mut store, 100, 10);
        assert_eq!(
            store.snapshot_sequence_numbers().unwrap(),
            vec![81, 91, 101]
        );
        store.set_snapshots_to_keep(1).unwrap();
        store.persist(&deposit(1.0, 1.0)).unwrap();
        store.snapshot(&BankAccount::default()).unwrap();
        assert_eq!(store.snapshot_sequence_numbers().unwrap(), vec![102]);
        assert!(matches!(
            store.set_snapshots_to_keep(0),
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[test]
fn time_travel_rebuilds_any_past_state() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("tt", None, false);
        account_with(&mut store, 60, 25);
        for seq in [1u64, 2, 25, 26, 27, 50, 51, 61] {
            let at = store.recover_at(seq).unwrap().unwrap();
            assert_eq!(at.transaction_count, seq - 1, "at {seq}");
            assert_eq!(at.balance, (seq - 1) as f64 * 10.0);
        }
        assert!(matches!(
            store.recover_at(62),
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[test]
fn covered_history_can_be_deleted_and_recovery_still_works() {
    for mut db in each_backend() {
        {
            let mut store = db.open::<BankAccount>("d", None, false);
            account_with(&mut store, 50, 20);
            assert!(
                matches!(store.delete_events_to(45), Err(Error::InvalidArgument(_))),
                "beyond the newest snapshot"
            );
            assert_eq!(store.delete_events_to(41).unwrap(), 41);
            assert_eq!(store.deleted_to().unwrap(), 41);
            assert_eq!(store.events(0, u64::MAX).unwrap().len(), 10);
            assert_eq!(store.highest_sequence_number(), 51);
            assert_eq!(store.recover().unwrap().unwrap().transaction_count, 50);
            assert!(store.verify_integrity().unwrap().is_ok());
            // Running it again, or asking for less, is harmless: the mark never goes down.
            assert_eq!(store.delete_events_to(41).unwrap(), 0);
            assert_eq!(store.delete_events_to(10).unwrap(), 0);
            assert_eq!(store.deleted_to().unwrap(), 41);
            assert_eq!(store.persist(&deposit(1.0, 1.0)).unwrap(), 52);
            assert!(
                matches!(store.recover_at(30), Err(Error::InvalidArgument(_))),
                "that past state is gone"
            );
            assert_eq!(store.recover_at(41).unwrap().unwrap().transaction_count, 40);
        }
        db.reopen();
        let mut store = db.open::<BankAccount>("d", None, false);
        assert_eq!(
            store.persist(&deposit(1.0, 501.0)).unwrap(),
            53,
            "the highest sequence number never goes back"
        );
        assert_eq!(store.recover().unwrap().unwrap().transaction_count, 52);
    }
}

#[test]
fn deleting_nothing_leaves_no_mark_and_appends_go_on() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("nothing", None, false);
        assert_eq!(store.delete_events_to(0).unwrap(), 0);
        assert_eq!(store.deleted_to().unwrap(), 0);
        assert_eq!(store.persist(&deposit(1.0, 1.0)).unwrap(), 1);
    }
}

#[test]
fn deleting_every_event_under_a_snapshot_keeps_the_sequence_going() {
    for mut db in each_backend() {
        {
            let mut store = db.open::<BankAccount>("all", None, false);
            account_with(&mut store, 9, 0);
            store.snapshot(&store.recover().unwrap().unwrap()).unwrap();
            assert_eq!(store.delete_events_to(10).unwrap(), 10);
            assert!(store.events(0, u64::MAX).unwrap().is_empty());
        }
        db.reopen();
        let mut store = db.open::<BankAccount>("all", None, false);
        assert_eq!(
            store.highest_sequence_number(),
            10,
            "the journal's end is the deletion mark"
        );
        assert_eq!(store.persist(&deposit(1.0, 91.0)).unwrap(), 11);
        assert_eq!(store.recover().unwrap().unwrap().transaction_count, 10);
        assert!(store.verify_integrity().unwrap().is_ok());
    }
}

#[test]
fn an_unreadable_snapshot_is_an_error_not_a_replay_from_zero() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("bad-snap", None, false);
        account_with(&mut store, 10, 10);
        damage_all(db.backend.as_ref(), 2);
        let err = store.recover().unwrap_err();
        assert!(
            matches!(err, Error::Corrupted { ref record, .. } if record.contains("snapshot")),
            "{err}"
        );
    }
}

#[test]
fn a_missing_event_is_detected_on_recovery_and_reads() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("gap", None, false);
        account_with(&mut store, 10, 0);
        let events = db.backend.scan(&[1], &[2], 100, false).unwrap();
        let (fifth, _) = &events[4];
        db.backend
            .commit(&WriteBatch {
                guards: vec![],
                ops: vec![WriteOp::Delete { key: fifth.clone() }],
                ..Default::default()
            })
            .unwrap()
            .unwrap();
        assert!(matches!(store.recover(), Err(Error::Corrupted { .. })));
        assert!(matches!(
            store.events(0, u64::MAX),
            Err(Error::Corrupted { .. })
        ));
        // The newest event missing is a gap too.
        let report = store.verify_integrity().unwrap();
        assert_eq!(
            report.integrity_errors.len(),
            1,
            "{:?}",
            report.integrity_errors
        );
        assert!(report.integrity_errors[0].reason.contains("missing"));
    }
}

/// Flips a byte in the middle of every record of `kind` (1 events, 2 snapshots).
pub fn damage_all(backend: &dyn Backend, kind: u8) {
    let records = backend
        .scan(&[kind], &[kind + 1], usize::MAX, false)
        .unwrap();
    assert!(!records.is_empty());
    let ops = records
        .into_iter()
        .map(|(key, mut value)| {
            let middle = value.len() / 2;
            value[middle] ^= 0x55;
            WriteOp::Put { key, value }
        })
        .collect();
    commit_ops(backend, ops);
}

/// Removes the stored events of `store`'s journal from sequence number `from` on, as
/// damage would (the engine rolled back or lost them), behind the store's back.
fn lose_events_from(backend: &dyn Backend, from: usize) {
    let events = backend.scan(&[1], &[2], usize::MAX, false).unwrap();
    let ops = events[from - 1..]
        .iter()
        .map(|(key, _)| WriteOp::Delete { key: key.clone() })
        .collect();
    commit_ops(backend, ops);
}

/// Commits `ops` straight to the engine, behind every store's back.
fn commit_ops(backend: &dyn Backend, ops: Vec<WriteOp>) {
    backend
        .commit(&WriteBatch {
            guards: vec![],
            ops,
            ..Default::default()
        })
        .unwrap()
        .unwrap();
}

/// A journal that ends below its newest snapshot lost events: recovery names the missing
/// event instead of quietly rebuilding an older state (it replayed the events that were
/// left and ignored the snapshot) or trusting the snapshot over the journal.
#[test]
fn a_journal_that_ends_below_its_newest_snapshot_is_corrupted() {
    for mut db in each_backend() {
        {
            let mut store = db.open::<BankAccount>("rolled-back", None, false);
            let account = account_with(&mut store, 10, 0);
            store.snapshot(&account).unwrap();
            lose_events_from(db.backend.as_ref(), 9);
            let err = store.recover().unwrap_err();
            assert!(
                matches!(err, Error::Corrupted { ref record, ref reason }
                    if record.contains("event 11") && reason.contains("newest snapshot")),
                "{err}"
            );
        }
        db.reopen();
        let store = db.open::<BankAccount>("rolled-back", None, false);
        assert!(
            matches!(store.recover(), Err(Error::Corrupted { .. })),
            "after a reopen too"
        );
    }
}

/// Recovery reads a journal to its end however long it is: past the first pages read on
/// the caller's thread into the read-ahead, and a gap there is still found.
#[test]
fn recovery_replays_a_long_journal_to_its_end_and_finds_a_gap_in_it() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("long", None, false);
        let mut account = BankAccount::default();
        let mut events = vec![opened("long", 0.0)];
        account.apply(&events[0]);
        for _ in 1..6000 {
            let event = account.deposit(1.0).unwrap();
            account.apply(&event);
            events.push(event);
        }
        for chunk in events.chunks(1000) {
            store.persist_batch(chunk).unwrap();
        }
        assert_eq!(store.recover().unwrap(), Some(account));
        let fresh = db.open::<BankAccount>("long", None, false);
        assert_eq!(fresh.highest_sequence_number(), 6000);

        let events = db.backend.scan(&[1], &[2], usize::MAX, false).unwrap();
        let key = events[5000].0.clone();
        commit_ops(db.backend.as_ref(), vec![WriteOp::Delete { key }]);
        let err = store.recover().unwrap_err();
        assert!(
            matches!(err, Error::Corrupted { ref record, .. } if record.contains("event 5001")),
            "{err}"
        );
    }
}

/// Recovery reads what it needs once: the deletion mark, the newest snapshot, the events
/// after it to wherever the journal ends (issue 13: it read the deletion mark twice, an
/// actor also re-read the end and listed every snapshot, and the end was read before
/// the events instead of found by reading them).
#[test]
fn recovery_reads_the_mark_the_snapshot_and_the_events_once_each() {
    let faulty = backends::Faulty::new(std::sync::Arc::new(rush_store::MemoryManager::default()));
    let engine: std::sync::Arc<dyn Backend> = faulty.clone();
    let db =
        rush_store::Database::open_shared(engine, rush_store::DatabaseConfig::default()).unwrap();
    let mut store = db.store::<BankAccount>("accounts", "acc").unwrap();
    let expected = account_with(&mut store, 149, 100);

    let before = faulty.reads();
    assert_eq!(store.recover().unwrap(), Some(expected.clone()));
    assert_eq!(faulty.reads() - before, 3, "reads of Store::recover");

    let before = faulty.reads();
    let (fresh, recovered) = db.recover_store::<BankAccount>("accounts", "acc").unwrap();
    assert_eq!(
        faulty.reads() - before,
        3,
        "reads of Database::recover_store"
    );
    assert_eq!(recovered.state, Some(expected));
    assert_eq!(recovered.snapshot_sequence_number, 101);
    assert_eq!(fresh.highest_sequence_number(), 150);
}
