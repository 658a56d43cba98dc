//! A step that panics does not take the process down: the panic is a failed try (retried,
//! then parked on a dead letter), and the saga is resumable once the step is fixed.
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

use rush_actor::{Persistence, PersistenceConfig, SagaOutcome, Sagas, StepPhase};
use scripted::Scripted;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

async fn sagas() -> Sagas {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    Sagas::open(&persistence).unwrap()
}

#[tokio::test]
async fn a_step_that_panics_once_is_retried_and_the_saga_completes() {
    let sagas = sagas().await;
    let saga = Scripted::new(&["a", "b"], |step, _, before| {
        assert!(!(step == "b" && before == 0), "injected panic in step b");
        Ok(())
    });
    sagas.register(saga.clone());

    let outcome = sagas.start::<Scripted>("p-1", String::new()).await.unwrap();

    assert_eq!(outcome, SagaOutcome::Completed);
    assert_eq!(saga.trace(), ["a.action", "b.action", "b.action"]);
}

#[tokio::test]
async fn a_step_that_keeps_panicking_parks_the_saga_and_a_fixed_definition_resumes_it() {
    let sagas = sagas().await;
    let fixed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&fixed);
    let saga = Scripted::new(&["a", "b"], move |step, _, _| {
        assert!(step != "b" || flag.load(Ordering::SeqCst), "bug in step b");
        Ok(())
    });
    sagas.register(saga.clone());

    let outcome = sagas.start::<Scripted>("p-2", String::new()).await.unwrap();
    let SagaOutcome::Parked {
        dead_letter,
        step,
        phase,
        reason,
    } = outcome
    else {
        panic!("expected a parked saga, got {outcome:?}");
    };
    assert_eq!((step.as_str(), phase), ("b", StepPhase::Action));
    assert!(reason.contains("panicked"), "{reason}");

    // The process is alive and the saga resumes once the bug is fixed.
    fixed.store(true, Ordering::SeqCst);
    let outcome = sagas.dead_letters().replay(&dead_letter).await.unwrap();
    assert_eq!(outcome, SagaOutcome::Completed);
}
