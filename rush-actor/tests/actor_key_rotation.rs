//! Key rotation under the persistence extension: a database rotated from key A to key B
//! (here by the inspector, as `rush rotate-key` does) is recovered by an extension
//! configured with B plus A as a decryption key, whether the rotation finished or stopped
//! halfway; with B alone, a half-rotated database fails with an error that names the
//! missing key and says what to do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

#[path = "support/account.rs"]
mod account;

use account::{Account, Cmd, deposit};
use rush_actor::{Error, Persistence, PersistenceConfig, SnapshotPolicy};
use rush_store::inspect::Inspector;
use rush_store::{Backend, EncryptionKey, EventFilter, Keyring};
use std::sync::Arc;

const A: [u8; 32] = [0xa1; 32];
const B: [u8; 32] = [0xb2; 32];
const ENTITIES: u64 = 3;

fn config(current: [u8; 32], older: &[[u8; 32]]) -> PersistenceConfig {
    PersistenceConfig {
        encryption_key: Some(current.into()),
        decryption_keys: older.iter().map(|key| EncryptionKey::from(*key)).collect(),
        snapshots: SnapshotPolicy {
            every: Some(3),
            keep: 2,
            delete_covered_events: false,
        },
        ..PersistenceConfig::default()
    }
}

/// Every entity's balance, and the totals row, as `persistence` recovers them.
async fn read_back(persistence: &Persistence) -> (Vec<u64>, Option<u64>, usize) {
    let mut balances = Vec::new();
    for i in 0..ENTITIES {
        let account = persistence
            .get_or_spawn::<Account>(&format!("acct-{i}"))
            .await
            .unwrap();
        balances.push(account.ask(Cmd::Balance).await.unwrap());
    }
    let total = persistence
        .table::<u64>("totals")
        .unwrap()
        .get("all")
        .unwrap();
    let events = persistence
        .query::<Account>()
        .unwrap()
        .events(1, &EventFilter::all())
        .unwrap()
        .len();
    (balances, total, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_database_recovers_with_the_new_key_and_the_old_as_decryption_key() {
    let backend: Arc<dyn Backend> = Arc::new(engine_under_test::fresh());
    let written = Persistence::open_shared(Arc::clone(&backend), config(A, &[]))
        .await
        .unwrap();
    for i in 0..ENTITIES {
        let account = written.entity::<Account>(&format!("acct-{i}"));
        for n in 1..=5 {
            account.ask(deposit(10 * (i + 1), n)).await.unwrap();
        }
    }
    written
        .table::<u64>("totals")
        .unwrap()
        .put("all", &300)
        .unwrap();
    let expected = (vec![50, 100, 150], Some(300), 15);
    assert_eq!(read_back(&written).await, expected);
    written.shutdown().await.unwrap();

    // The rotation stops after its first page: the events are sealed with B, the
    // snapshots and the table rows still with A.
    let from_a = Inspector::with_keyring(Arc::clone(&backend), &Keyring::new(A.into()));
    let report = from_a.rotate_key(&B.into(), &mut |_| false).unwrap();
    assert!(report.interrupted && report.rewritten == 15, "{report:?}");

    let b_only = Persistence::open_shared(Arc::clone(&backend), config(B, &[]))
        .await
        .unwrap();
    match b_only.get_or_spawn::<Account>("acct-0").await {
        Err(Error::RecoveryFailed { reason, .. }) => {
            let a_id = format!("{:08x}", EncryptionKey::from(A).id());
            assert!(reason.contains(&format!("key id {a_id}")), "{reason}");
            assert!(reason.contains("as a decryption key"), "{reason}");
        }
        other => panic!("recovered without the old key: {other:?}"),
    }
    b_only.shutdown().await.unwrap();

    let both = Persistence::open_shared(Arc::clone(&backend), config(B, &[A]))
        .await
        .unwrap();
    assert_eq!(read_back(&both).await, expected);
    // New writes are sealed with B, beside the records of either key.
    let last = both.entity::<Account>("acct-0");
    assert_eq!(last.ask(deposit(1, 6)).await.unwrap(), 51);
    both.shutdown().await.unwrap();

    // Once the rotation finishes, B alone reads everything.
    let keyring = Keyring::new(A.into()).with_decryption_key(B.into());
    let report = Inspector::with_keyring(Arc::clone(&backend), &keyring)
        .rotate_key(&B.into(), &mut |_| true)
        .unwrap();
    assert!(!report.interrupted, "{report:?}");
    let b_only = Persistence::open_shared(backend, config(B, &[]))
        .await
        .unwrap();
    assert_eq!(
        read_back(&b_only).await,
        (vec![51, 100, 150], Some(300), 16)
    );
    b_only.shutdown().await.unwrap();
}
