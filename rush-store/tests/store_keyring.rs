//! One keyring for every view of a database: after a key rotation that stopped halfway, a
//! store, a table and a query opened with the new key plus the old one as a decryption key
//! read everything, and a store's recovery with the new key alone fails naming the key
//! it lacks.
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
use bank::{BankAccount, KEY, OTHER_KEY, deposit, opened};
use rush_store::inspect::Inspector;
use rush_store::{EncryptionKey, Error, EventFilter, EventQuery, Keyring, Store, Table};

#[test]
fn a_half_rotated_database_opens_through_a_keyring_holding_both_keys() {
    for db in each_backend() {
        let (old, new) = (EncryptionKey::from(*KEY), EncryptionKey::from(*OTHER_KEY));
        let before = Keyring::new(old.clone());
        let mut store =
            Store::<BankAccount>::with_keyring("accounts", "alice", db.backend.clone(), &before)
                .unwrap();
        store.persist(&opened("alice", 100.0)).unwrap();
        store.persist(&deposit(5.0, 105.0)).unwrap();
        store.snapshot(&store.recover().unwrap().unwrap()).unwrap();
        store.persist(&deposit(5.0, 110.0)).unwrap();
        let table =
            Table::<String>::open_with_keyring(db.backend.clone(), "notes", &before).unwrap();
        table.put("alice", &"vip".to_owned()).unwrap();

        // The first page (every event) is sealed again; snapshots and rows keep the old key.
        let report = Inspector::with_keyring(db.backend.clone(), &before)
            .rotate_key(&new, &mut |_| false)
            .unwrap();
        assert!(
            report.interrupted && report.rewritten == 3,
            "{}: {report:?}",
            db.name
        );

        let both = Keyring::new(new.clone()).with_decryption_key(old.clone());
        let reopened =
            Store::<BankAccount>::with_keyring("accounts", "alice", db.backend.clone(), &both)
                .unwrap();
        let state = reopened.recover().unwrap().unwrap();
        assert_eq!(
            (state.balance, state.transaction_count),
            (110.0, 2),
            "{}",
            db.name
        );
        let table = Table::<String>::open_with_keyring(db.backend.clone(), "notes", &both).unwrap();
        assert_eq!(table.get("alice").unwrap().as_deref(), Some("vip"));
        let query =
            EventQuery::<BankAccount>::with_keyring(db.backend.clone(), "accounts", &both).unwrap();
        assert_eq!(query.events(1, &EventFilter::all()).unwrap().len(), 3);

        let new_only = Keyring::new(new.clone());
        let lacking =
            Store::<BankAccount>::with_keyring("accounts", "alice", db.backend.clone(), &new_only)
                .unwrap();
        match lacking.recover() {
            Err(Error::Decryption { reason, .. }) => {
                assert!(reason.contains(&format!("{:08x}", old.id())), "{reason}");
                assert!(
                    reason.contains(&format!("holds {:08x}", new.id())),
                    "{reason}"
                );
                assert!(reason.contains("as a decryption key"), "{reason}");
            }
            other => panic!("{}: {other:?}", db.name),
        }
    }
}
