//! A rejected action compensates the completed steps, in reverse order, and only them.
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
#[path = "support/scripted.rs"]
mod scripted;

use bank::{BankAccount, BankCmd, Transfer, balance, open, transfer};
use rush_actor::{
    Persistence, PersistenceConfig, SagaOutcome, SagaStatus, Sagas, StepError, StepPhase,
};
use scripted::Scripted;

async fn system() -> (Persistence, Sagas) {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    let sagas = Sagas::open(&persistence).unwrap();
    (persistence, sagas)
}

#[tokio::test]
async fn completed_steps_are_compensated_in_reverse_order_and_no_others() {
    let (_persistence, sagas) = system().await;
    let saga = Scripted::new(&["a", "b", "c", "d"], |step, phase, _| {
        if step == "c" && phase == StepPhase::Action {
            Err(StepError::Rejected("c says no".into()))
        } else {
            Ok(())
        }
    });
    sagas.register(saga.clone());

    let outcome = sagas.start::<Scripted>("s-1", "data".into()).await.unwrap();

    assert_eq!(
        outcome,
        SagaOutcome::Compensated {
            failed_step: "c".into(),
            reason: "c says no".into()
        }
    );
    assert_eq!(
        saga.trace(),
        [
            "a.action",
            "b.action",
            "c.action",
            "b.compensation",
            "a.compensation"
        ],
        "the rejected step is not compensated, the later one never runs"
    );
    assert_eq!(
        sagas.status::<Scripted>("s-1").await.unwrap(),
        Some(SagaStatus::Finished(outcome))
    );
}

#[tokio::test]
async fn a_rejection_of_the_first_step_compensates_nothing() {
    let (_persistence, sagas) = system().await;
    let saga = Scripted::new(&["a", "b"], |_, _, _| Err(StepError::Rejected("no".into())));
    sagas.register(saga.clone());
    let outcome = sagas.start::<Scripted>("s-2", String::new()).await.unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { ref failed_step, .. } if failed_step == "a")
    );
    assert_eq!(saga.trace(), ["a.action"]);
}

#[tokio::test]
async fn a_refused_credit_refunds_the_debit() {
    let (persistence, sagas) = system().await;
    sagas.register(Transfer::default());
    open(&persistence, "alice", 100).await;
    open(&persistence, "carol", 0).await;
    persistence
        .entity::<BankAccount>("carol")
        .ask(BankCmd::Close)
        .await
        .unwrap();

    let outcome = sagas
        .start::<Transfer>("t-closed", transfer("alice", "carol", 40))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        SagaOutcome::Compensated {
            failed_step: "credit".into(),
            reason: "account closed or missing".into()
        }
    );
    assert_eq!(balance(&persistence, "alice").await, 100);

    let outcome = sagas
        .start::<Transfer>("t-missing", transfer("alice", "nobody", 40))
        .await
        .unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Compensated { .. }),
        "{outcome:?}"
    );
    assert_eq!(balance(&persistence, "alice").await, 100);
}

#[tokio::test]
async fn a_saga_id_is_started_once() {
    let (persistence, sagas) = system().await;
    sagas.register(Transfer::default());
    open(&persistence, "alice", 100).await;
    open(&persistence, "bob", 0).await;

    let first = sagas
        .start::<Transfer>("t-1", transfer("alice", "bob", 30))
        .await
        .unwrap();
    // Same id, other data: the existing saga's outcome, nothing moves again.
    let again = sagas
        .start::<Transfer>("t-1", transfer("alice", "bob", 50))
        .await
        .unwrap();
    assert_eq!(first, SagaOutcome::Completed);
    assert_eq!(again, SagaOutcome::Completed);
    assert_eq!(balance(&persistence, "alice").await, 70);
    assert_eq!(balance(&persistence, "bob").await, 30);

    // Concurrent starts of one id run it once.
    let (a, b) = tokio::join!(
        sagas.start::<Transfer>("t-2", transfer("alice", "bob", 10)),
        sagas.start::<Transfer>("t-2", transfer("alice", "bob", 10)),
    );
    assert_eq!(
        (a.unwrap(), b.unwrap()),
        (SagaOutcome::Completed, SagaOutcome::Completed)
    );
    assert_eq!(balance(&persistence, "alice").await, 60);
}
