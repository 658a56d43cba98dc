//! Transient failures are retried under the definition's policy: the delays grow as the
//! policy says, and a step that recovers within the retries completes the saga.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

#[path = "support/scripted.rs"]
mod scripted;

use rush_actor::{
    Persistence, PersistenceConfig, RetryPolicy, SagaOutcome, Sagas, StepError, StepPhase,
};
use scripted::Scripted;
use std::time::Duration;

#[tokio::test]
async fn a_step_failing_twice_then_succeeding_completes_after_two_retries_spaced_by_the_policy() {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    let sagas = Sagas::open(&persistence).unwrap();
    let mut saga = Scripted::new(&["a", "flaky", "c"], |step, _, before| {
        if step == "flaky" && before < 2 {
            Err(StepError::Retryable("timeout".into()))
        } else {
            Ok(())
        }
    });
    let policy = RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(30),
        max_delay: Duration::from_secs(1),
        multiplier: 2.0,
        jitter: 0.0,
    };
    saga.retry = policy;
    sagas.register(saga.clone());

    let outcome = sagas.start::<Scripted>("r-1", String::new()).await.unwrap();

    assert_eq!(outcome, SagaOutcome::Completed);
    assert_eq!(
        saga.trace(),
        [
            "a.action",
            "flaky.action",
            "flaky.action",
            "flaky.action",
            "c.action"
        ]
    );
    let flaky: Vec<_> = saga
        .calls()
        .into_iter()
        .filter(|c| c.step == "flaky")
        .collect();
    assert_eq!(
        flaky.iter().map(|c| c.attempt).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    // Every try of one command carries the same idempotency key.
    assert!(
        flaky
            .iter()
            .all(|c| c.idempotency_key == "scripted/r-1/flaky/action")
    );
    let first_gap = flaky[1].at - flaky[0].at;
    let second_gap = flaky[2].at - flaky[1].at;
    assert!(first_gap >= policy.delay(0, 0.5), "{first_gap:?}");
    assert!(second_gap >= policy.delay(1, 0.5), "{second_gap:?}");
    assert!(second_gap < Duration::from_millis(500), "{second_gap:?}");
}

#[tokio::test]
async fn a_rejection_is_never_retried() {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    let sagas = Sagas::open(&persistence).unwrap();
    let saga = Scripted::new(&["a"], |_, phase, _| match phase {
        StepPhase::Action => Err(StepError::Rejected("no".into())),
        StepPhase::Compensation => Ok(()),
    });
    sagas.register(saga.clone());
    let outcome = sagas.start::<Scripted>("r-2", String::new()).await.unwrap();
    assert!(matches!(outcome, SagaOutcome::Compensated { .. }));
    assert_eq!(saga.trace(), ["a.action"]);
}
