//! A key rotation online: the extension restarts with the new key in front and the old
//! one for reading, then reseals every record through the database's writer while its
//! actors keep taking commands (snapshots and deletions of covered history included).
//! Afterwards the new key alone opens everything.
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
use rush_actor::{Persistence, PersistenceConfig, SnapshotPolicy};
use rush_store::inspect::{Inspector, Scope};
use rush_store::{Backend, EncryptionKey, Keyring};
use std::sync::Arc;

const ENTITIES: usize = 12;
const BEFORE: u64 = 30;
const DURING: u64 = 15;

fn config(current: [u8; 32], older: &[[u8; 32]]) -> PersistenceConfig {
    PersistenceConfig {
        encryption_key: Some(EncryptionKey::from(current)),
        decryption_keys: older.iter().map(|k| EncryptionKey::from(*k)).collect(),
        snapshots: SnapshotPolicy {
            every: Some(10),
            keep: 2,
            delete_covered_events: true,
        },
        ..PersistenceConfig::default()
    }
}

fn id(n: usize) -> String {
    format!("e{n}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotates_online_while_actors_keep_serving() {
    const OLD: [u8; 32] = [1; 32];
    const NEW: [u8; 32] = [2; 32];
    let memory = engine_under_test::fresh();
    let before = Persistence::open(memory.clone(), config(OLD, &[]))
        .await
        .unwrap();
    for n in 0..ENTITIES {
        let entity = before.entity::<Account>(&id(n));
        for tag in 1..=BEFORE {
            entity.ask(deposit(1, tag)).await.unwrap();
        }
    }
    before.shutdown().await.unwrap();

    let during = Persistence::open(memory.clone(), config(NEW, &[OLD]))
        .await
        .unwrap();
    let serving = {
        let during = during.clone();
        tokio::spawn(async move {
            for tag in 1..=DURING {
                for n in 0..ENTITIES {
                    let entity = during.entity::<Account>(&id(n));
                    entity.ask(deposit(1, BEFORE + tag)).await.unwrap();
                }
            }
        })
    };
    let report = during.database().reseal_with_current_key().await.unwrap();
    serving.await.unwrap();
    assert!(report.resealed > 0, "{report:?}");
    assert_eq!(report.key_id, EncryptionKey::from(NEW).id());
    during.shutdown().await.unwrap();

    // The old key is gone from the configuration, and nothing needs it.
    let engine: Arc<dyn Backend> = Arc::new(memory.clone());
    let only_new = Keyring::new(EncryptionKey::from(NEW));
    let verified = Inspector::with_keyring(engine, &only_new)
        .verify(&Scope::All, &mut |_| true)
        .unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    let after = Persistence::open(memory, config(NEW, &[])).await.unwrap();
    for n in 0..ENTITIES {
        let balance = after.entity::<Account>(&id(n)).ask(Cmd::Balance).await;
        assert_eq!(balance.unwrap(), BEFORE + DURING, "entity {n}");
    }
    after.shutdown().await.unwrap();
}
