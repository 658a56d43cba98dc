//! Encryption and integrity: every combination of encryption and compression, wrong and
//! malformed keys, tampered, torn and moved records, and key rotation.
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
use bank::{BankAccount, BankEvent, KEY, OTHER_KEY, deposit, opened};
use rush_store::{Backend, Error, Store, WriteBatch, WriteOp};
use std::sync::Arc;

fn history() -> Vec<BankEvent> {
    let mut events = vec![opened("x", 100.0)];
    events.extend((1..=40).map(|i| deposit(1.0, 100.0 + i as f64)));
    events.push(BankEvent::AccountOpened {
        account_id: "a long id that compresses well ".repeat(10),
        initial_balance: 1.0,
    });
    events
}

fn put(backend: &dyn Backend, key: Vec<u8>, value: Vec<u8>) {
    backend
        .commit(&WriteBatch {
            guards: vec![],
            ops: vec![WriteOp::Put { key, value }],
            ..Default::default()
        })
        .unwrap()
        .unwrap();
}

fn records(backend: &dyn Backend, kind: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    backend
        .scan(&[kind], &[kind + 1], usize::MAX, false)
        .unwrap()
}

#[test]
fn every_combination_of_encryption_and_compression_round_trips() {
    for db in each_backend() {
        for (i, (key, compress)) in [
            (None, false),
            (None, true),
            (Some(KEY), false),
            (Some(KEY), true),
        ]
        .into_iter()
        .enumerate()
        {
            let entity = format!("combo-{i}");
            let key = key.map(|k| &k[..]);
            let mut store = db.open::<BankAccount>(&entity, key, compress);
            store.persist_batch(&history()).unwrap();
            store.snapshot(&store.recover().unwrap().unwrap()).unwrap();
            let reopened = db.open::<BankAccount>(&entity, key, compress);
            assert_eq!(
                reopened.events(0, u64::MAX).unwrap(),
                history(),
                "{} {entity}",
                db.name
            );
            assert!(reopened.verify_integrity().unwrap().is_ok());
            let stats = store.compression_stats();
            if compress {
                assert!(
                    stats.compressed_events >= 1 && stats.bytes_saved() > 0,
                    "{stats:?}"
                );
            } else {
                assert_eq!(stats.compressed_events, 0);
            }
        }
    }
}

#[test]
fn encrypted_records_do_not_contain_the_plaintext() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("secret", Some(KEY), false);
        store
            .persist(&opened("TOP-SECRET-ACCOUNT-NAME", 1.0))
            .unwrap();
        for (_, value) in records(db.backend.as_ref(), 1) {
            assert!(!value.windows(10).any(|w| w == b"TOP-SECRET"));
        }
    }
}

#[test]
fn a_key_of_the_wrong_length_is_refused() {
    for db in each_backend() {
        for bad in [
            &b""[..],
            &[1u8; 16],
            &[1u8; 31],
            b"your_very_secure_32_byte_key_here",
            &[1u8; 64],
        ] {
            let result = Store::<BankAccount>::with_backend(
                "accounts",
                "k",
                db.backend.clone(),
                Some(bad),
                false,
            );
            assert!(matches!(result, Err(Error::InvalidKey { actual }) if actual == bad.len()));
        }
    }
}

#[test]
fn the_wrong_key_is_a_clear_error_never_garbage() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("wk", Some(KEY), true);
        store.persist_batch(&history()).unwrap();
        store.snapshot(&BankAccount::default()).unwrap();
        for key in [Some(&OTHER_KEY[..]), None] {
            let wrong = db.open::<BankAccount>("wk", key, true);
            assert!(matches!(wrong.recover(), Err(Error::Decryption { .. })));
            assert!(matches!(
                wrong.events(0, u64::MAX),
                Err(Error::Decryption { .. })
            ));
            let report = wrong.verify_integrity().unwrap();
            assert_eq!(
                report.integrity_errors.len() as u64,
                report.events_checked + report.snapshots_checked
            );
        }
    }
}

#[test]
fn tampered_torn_and_moved_records_are_detected() {
    for key in [None, Some(&KEY[..])] {
        for db in each_backend() {
            let backend = db.backend.as_ref();
            let mut store = db.open::<BankAccount>("t", key, true);
            store.persist_batch(&history()).unwrap();
            let original = records(backend, 1);

            // One flipped bit anywhere in the 3rd record.
            let (k3, v3) = original[2].clone();
            for i in 0..v3.len() {
                let mut bad = v3.clone();
                bad[i] ^= 0x10;
                put(backend, k3.clone(), bad);
                let result = store.recover();
                // Bytes 2..6 of a format-3 event are the key id: a changed id names a key
                // the store lacks.
                let key_id_byte = key.is_some() && (2..6).contains(&i);
                let expected = matches!(result, Err(Error::Corrupted { .. }))
                    || (key_id_byte && matches!(result, Err(Error::Decryption { .. })));
                assert!(expected, "byte {i} encrypted {}: {result:?}", key.is_some());
            }
            // Torn: truncated, or extended.
            put(backend, k3.clone(), v3[..v3.len() - 3].to_vec());
            assert!(matches!(
                store.events(0, u64::MAX),
                Err(Error::Corrupted { .. })
            ));
            let mut longer = v3.clone();
            longer.extend_from_slice(b"junk");
            put(backend, k3.clone(), longer);
            assert!(matches!(
                store.events(0, u64::MAX),
                Err(Error::Corrupted { .. })
            ));
            // Moved: a valid record copied over another one.
            put(backend, k3.clone(), original[3].1.clone());
            assert!(matches!(
                store.events(0, u64::MAX),
                Err(Error::Corrupted { .. })
            ));
            let report = store.verify_integrity().unwrap();
            assert_eq!(report.integrity_errors.len(), 1);
            assert!(
                report.integrity_errors[0].record.contains("event 3"),
                "{}",
                report.integrity_errors[0]
            );
            // Restored, everything is fine again.
            put(backend, k3, v3);
            assert_eq!(store.events(0, u64::MAX).unwrap(), history());
        }
    }
}

#[test]
fn rotation_reencrypts_everything_and_the_old_key_no_longer_opens_it() {
    for db in each_backend() {
        let mut store = db.open::<BankAccount>("rot", Some(KEY), true);
        store.persist_batch(&history()).unwrap();
        store.snapshot(&store.recover().unwrap().unwrap()).unwrap();
        let before = store.recover().unwrap();
        assert_eq!(
            store.rotate_encryption_key(OTHER_KEY).unwrap(),
            history().len() as u64 + 1
        );
        // The handle goes on with the new key.
        store.persist(&deposit(1.0, 1.0)).unwrap();
        let fresh = db.open::<BankAccount>("rot", Some(OTHER_KEY), true);
        assert_eq!(fresh.events(0, history().len() as u64).unwrap(), history());
        assert!(fresh.verify_integrity().unwrap().is_ok());
        let old = db.open::<BankAccount>("rot", Some(KEY), true);
        assert!(matches!(old.recover(), Err(Error::Decryption { .. })));
        assert_eq!(store.recover_at(history().len() as u64).unwrap(), before);
        // Rotating to the same key again has nothing to do.
        assert_eq!(store.rotate_encryption_key(OTHER_KEY).unwrap(), 0);
    }
}

#[test]
fn an_interrupted_rotation_leaves_every_record_readable_and_finishes_when_run_again() {
    for db in each_backend() {
        let faulty = Faulty::new(db.backend.clone());
        let backend: Arc<dyn Backend> = faulty.clone();
        let mut store = Store::<BankAccount>::with_backend(
            "accounts",
            "half",
            backend.clone(),
            Some(KEY),
            false,
        )
        .unwrap();
        let many: Vec<BankEvent> = (1..=1500).map(|i| deposit(1.0, i as f64)).collect();
        store.persist_batch(&many).unwrap();
        // Rotation writes pages of records; the second page's commit fails.
        faulty.fail_commits_after(1);
        let err = store.rotate_encryption_key(OTHER_KEY).unwrap_err();
        assert!(matches!(err, Error::DiskFull { .. }), "{err}");
        faulty.heal();
        drop(store);

        // Readable with both keys: new key first, old one added.
        let mut mixed = Store::<BankAccount>::with_backend(
            "accounts",
            "half",
            backend.clone(),
            Some(OTHER_KEY),
            false,
        )
        .unwrap();
        assert!(
            matches!(mixed.events(0, u64::MAX), Err(Error::Decryption { .. })),
            "half is still under the old key"
        );
        mixed.add_decryption_key(KEY).unwrap();
        assert_eq!(mixed.events(0, u64::MAX).unwrap(), many);

        // Run again from a handle opened with the old key: it completes.
        let mut resume = Store::<BankAccount>::with_backend(
            "accounts",
            "half",
            backend.clone(),
            Some(KEY),
            false,
        )
        .unwrap();
        let rewritten = resume.rotate_encryption_key(OTHER_KEY).unwrap();
        assert!(
            rewritten > 0 && rewritten < 1500,
            "only the rest is rewritten: {rewritten}"
        );
        let done =
            Store::<BankAccount>::with_backend("accounts", "half", backend, Some(OTHER_KEY), false)
                .unwrap();
        assert_eq!(done.events(0, u64::MAX).unwrap(), many);
        assert!(done.verify_integrity().unwrap().is_ok());
    }
}

#[test]
fn a_plain_entity_can_be_encrypted_by_rotation() {
    for db in each_backend() {
        let mut plain = db.open::<BankAccount>("migrate", None, true);
        plain.persist_batch(&history()).unwrap();
        // A keyed store refuses unauthenticated records.
        let keyed = db.open::<BankAccount>("migrate", Some(KEY), true);
        assert!(matches!(keyed.recover(), Err(Error::Decryption { .. })));
        plain.rotate_encryption_key(KEY).unwrap();
        assert_eq!(keyed.events(0, u64::MAX).unwrap(), history());
    }
}
