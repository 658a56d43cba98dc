//! Every event a saga's commands persist carries the saga's id as correlation id and the
//! step's command as causation id; so do the saga's own journal events.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

#[path = "support/bank.rs"]
mod bank;

use bank::{BankEvent, Transfer, account_events, open, transfer};
use rush_actor::{Persistence, PersistenceConfig, SagaOutcome, Sagas};
use rush_store::Backend;
use std::sync::Arc;

const KEY: [u8; 32] = [3; 32];

#[tokio::test]
async fn account_events_written_by_a_saga_carry_its_correlation_and_causation_ids() {
    let backend: Arc<dyn Backend> = Arc::new(engine_under_test::fresh());
    let config = PersistenceConfig {
        encryption_key: Some(KEY.into()),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open_shared(backend.clone(), config)
        .await
        .unwrap();
    let sagas = Sagas::open(&persistence).unwrap();
    sagas.register(Transfer::default());
    open(&persistence, "alice", 100).await;
    open(&persistence, "bob", 0).await;

    let outcome = sagas
        .start::<Transfer>("transfer-7", transfer("alice", "bob", 25))
        .await
        .unwrap();
    assert_eq!(outcome, SagaOutcome::Completed);

    let alice = account_events(&backend, Some(&KEY), "alice");
    let debit = alice
        .iter()
        .find(|e| matches!(e.event, BankEvent::Debited { .. }))
        .expect("alice was debited");
    assert_eq!(debit.metadata.correlation_id.as_deref(), Some("transfer-7"));
    assert_eq!(
        debit.metadata.causation_id.as_deref(),
        Some("transfer-7/debit/action")
    );
    let bob = account_events(&backend, Some(&KEY), "bob");
    let credit = bob
        .iter()
        .find(|e| matches!(e.event, BankEvent::Credited { .. }))
        .expect("bob was credited");
    assert_eq!(
        credit.metadata.correlation_id.as_deref(),
        Some("transfer-7")
    );
    assert_eq!(
        credit.metadata.causation_id.as_deref(),
        Some("transfer-7/credit/action")
    );
    // Events not caused by the saga carry none.
    assert_eq!(alice[0].metadata.correlation_id, None);

    // The saga's own journal is sealed with the extension's key and correlated too.
    let journal: Vec<_> = backend
        .scan(&[], &[0xff; 8], 10_000, false)
        .unwrap()
        .into_iter()
        .filter(|(k, _)| {
            k.windows(b"rush.saga.transfer".len())
                .any(|w| w == b"rush.saga.transfer")
        })
        .collect();
    assert!(!journal.is_empty(), "the saga journaled its progress");
    assert!(
        journal
            .iter()
            .all(|(_, v)| !v.windows(b"alice".len()).any(|w| w == b"alice")),
        "saga data is encrypted at rest"
    );
}

#[tokio::test]
async fn a_compensation_carries_the_saga_id_and_names_itself_as_cause() {
    let backend: Arc<dyn Backend> = Arc::new(engine_under_test::fresh());
    let persistence = Persistence::open_shared(backend.clone(), PersistenceConfig::default())
        .await
        .unwrap();
    let sagas = Sagas::open(&persistence).unwrap();
    sagas.register(Transfer::default());
    open(&persistence, "alice", 100).await;

    let outcome = sagas
        .start::<Transfer>("transfer-8", transfer("alice", "nobody", 10))
        .await
        .unwrap();
    assert!(matches!(outcome, SagaOutcome::Compensated { .. }));

    let alice = account_events(&backend, None, "alice");
    let refund = alice
        .iter()
        .find(|e| matches!(e.event, BankEvent::Credited { .. }))
        .expect("the debit was refunded");
    assert_eq!(
        refund.metadata.correlation_id.as_deref(),
        Some("transfer-8")
    );
    assert_eq!(
        refund.metadata.causation_id.as_deref(),
        Some("transfer-8/debit/compensation")
    );
}
