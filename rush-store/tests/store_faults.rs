//! Faults: a full disk, a failed flush. The store reports them clearly, keeps every
//! acknowledged event, refuses further writes from a handle whose state is uncertain,
//! and a new handle works once the fault clears.
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
use bank::{BankAccount, BankEvent, deposit};
use rush_store::{Backend, Error, HealthStatus, Store};
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[test]
fn a_full_disk_is_reported_and_loses_no_acknowledged_event() {
    for db in each_backend() {
        let faulty = Faulty::new(db.backend.clone());
        let backend: Arc<dyn Backend> = faulty.clone();
        let mut store =
            Store::<BankAccount>::with_backend("accounts", "full", backend.clone(), None, false)
                .unwrap();
        let mut acked: Vec<BankEvent> = Vec::new();
        for i in 0..10 {
            let event = deposit(1.0, f64::from(i));
            store.persist(&event).unwrap();
            acked.push(event);
        }
        faulty.disk_full.store(true, Ordering::SeqCst);
        let err = store.persist(&deposit(1.0, 99.0)).unwrap_err();
        assert!(
            matches!(err, Error::DiskFull { ref message, .. } if message.contains("No space left")),
            "{err}"
        );
        // This handle no longer knows whether its write landed: it refuses more.
        assert!(matches!(
            store.persist(&deposit(1.0, 100.0)),
            Err(Error::Poisoned(_))
        ));
        assert!(matches!(
            store.snapshot(&BankAccount::default()),
            Err(Error::Poisoned(_))
        ));
        // Reads still work and show every acknowledged event.
        assert_eq!(store.events(0, u64::MAX).unwrap(), acked);

        faulty.heal();
        let mut fresh =
            Store::<BankAccount>::with_backend("accounts", "full", backend, None, false).unwrap();
        assert_eq!(fresh.persist(&deposit(1.0, 10.0)).unwrap(), 11);
        assert_eq!(fresh.recover().unwrap().unwrap().transaction_count, 11);
    }
}

#[test]
fn a_failed_flush_is_an_error_and_poisons_the_handle() {
    for db in each_backend() {
        let faulty = Faulty::new(db.backend.clone());
        let backend: Arc<dyn Backend> = faulty.clone();
        let mut store =
            Store::<BankAccount>::with_backend("accounts", "flush", backend.clone(), None, false)
                .unwrap();
        store.persist(&deposit(1.0, 1.0)).unwrap();
        faulty.fail_flushes_after(0);
        assert!(matches!(
            store.persist(&deposit(1.0, 2.0)),
            Err(Error::DiskFull { .. })
        ));
        assert!(matches!(
            store.persist(&deposit(1.0, 3.0)),
            Err(Error::Poisoned(_))
        ));
        faulty.heal();
        // The unacknowledged write may or may not be there; the journal stays contiguous.
        let fresh =
            Store::<BankAccount>::with_backend("accounts", "flush", backend, None, false).unwrap();
        let n = fresh.events(0, u64::MAX).unwrap().len() as u64;
        assert!(n == 1 || n == 2);
        assert_eq!(fresh.highest_sequence_number(), n);
        assert!(fresh.verify_integrity().unwrap().is_ok());
    }
}

#[tokio::test]
async fn health_check_reports_faults() {
    for db in each_backend() {
        let faulty = Faulty::new(db.backend.clone());
        let backend: Arc<dyn Backend> = faulty.clone();
        let mut store =
            Store::<BankAccount>::with_backend("accounts", "hc", backend, None, false).unwrap();
        assert_eq!(
            store.health_check().await.unwrap().status,
            HealthStatus::Healthy
        );
        faulty.disk_full.store(true, Ordering::SeqCst);
        let report = store.health_check().await.unwrap();
        assert_eq!(report.status, HealthStatus::Unhealthy);
        assert!(
            report.message.contains("No space left"),
            "{}",
            report.message
        );
        let _ = store.persist(&deposit(1.0, 1.0));
        faulty.heal();
        let report = store.health_check().await.unwrap();
        assert_eq!(
            report.status,
            HealthStatus::Degraded,
            "a poisoned handle is degraded: {}",
            report.message
        );
    }
}

/// The stored bytes of every event of `entity`, in key order.
fn raw_events(backend: &Arc<dyn Backend>) -> Vec<(Vec<u8>, Vec<u8>)> {
    // Kind byte 1 is the event range (FORMAT.md).
    backend.scan(&[1], &[2], usize::MAX, false).unwrap()
}

#[test]
fn a_failed_commit_after_a_countdown_changes_no_acknowledged_byte() {
    for db in each_backend() {
        let faulty = Faulty::new(db.backend.clone());
        let backend: Arc<dyn Backend> = faulty.clone();
        let open = || {
            Store::<BankAccount>::with_backend(
                "accounts",
                "countdown",
                backend.clone(),
                Some(bank::KEY),
                true,
            )
            .unwrap()
        };
        let mut store = open();
        store
            .persist_batch(&[deposit(1.0, 1.0), deposit(1.0, 2.0)])
            .unwrap();
        faulty.fail_commits_after(2);
        store.persist(&deposit(1.0, 3.0)).unwrap();
        store.snapshot(&store.recover().unwrap().unwrap()).unwrap();
        let before = raw_events(&backend);
        let err = store
            .persist_batch(&[deposit(1.0, 4.0), deposit(1.0, 5.0)])
            .unwrap_err();
        assert!(
            matches!(&err, Error::DiskFull { operation: "write batch", message } if message.contains("No space left")),
            "{}: {err}",
            db.name
        );
        assert_eq!(faulty.injected.load(Ordering::SeqCst), 1);
        assert!(matches!(
            store.persist(&deposit(1.0, 6.0)),
            Err(Error::Poisoned(_))
        ));
        // Still failing: a new handle is refused too, and nothing changes.
        assert!(open().persist(&deposit(1.0, 7.0)).is_err());
        faulty.heal();
        let mut fresh = open();
        assert_eq!(fresh.highest_sequence_number(), 3, "{}", db.name);
        assert_eq!(fresh.persist(&deposit(1.0, 8.0)).unwrap(), 4);
        let after = raw_events(&backend);
        assert_eq!(after[..3], before[..], "{}: acknowledged bytes", db.name);
        assert_eq!(fresh.recover().unwrap().unwrap().transaction_count, 4);
        assert!(fresh.verify_integrity().unwrap().is_ok());
    }
}
