//! A command that fails every try parks its saga on a dead letter; replaying the letter
//! (after fixing the cause) finishes the saga, discarding it compensates (or skips the
//! compensation), and a replay that fails again parks the saga again.
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
    Error, Persistence, PersistenceConfig, SagaOutcome, SagaStatus, Sagas, StepError, StepPhase,
};
use scripted::Scripted;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

async fn sagas() -> Sagas {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    Sagas::open(&persistence).unwrap()
}

/// Step `broken_step`'s `broken_phase` fails (retryably) while `broken` is set; step
/// "reject" rejects its action.
fn saga(
    steps: &[&'static str],
    broken_step: &'static str,
    broken_phase: StepPhase,
    broken: &Arc<AtomicBool>,
) -> Scripted {
    let broken = Arc::clone(broken);
    Scripted::new(steps, move |step, phase, _| {
        if step == broken_step && phase == broken_phase && broken.load(Ordering::SeqCst) {
            Err(StepError::Retryable("service unavailable".into()))
        } else if step == "reject" && phase == StepPhase::Action {
            Err(StepError::Rejected("rejected".into()))
        } else {
            Ok(())
        }
    })
}

#[tokio::test]
async fn an_exhausted_step_parks_the_saga_and_a_replay_after_the_fix_completes_it() {
    let sagas = sagas().await;
    let broken = Arc::new(AtomicBool::new(true));
    let saga = saga(&["a", "b", "c"], "b", StepPhase::Action, &broken);
    sagas.register(saga.clone());

    let outcome = sagas.start::<Scripted>("d-1", String::new()).await.unwrap();

    let letter_id = "scripted/d-1/1/action";
    assert_eq!(
        outcome,
        SagaOutcome::Parked {
            dead_letter: letter_id.into(),
            step: "b".into(),
            phase: StepPhase::Action,
            reason: "service unavailable".into()
        }
    );
    // 1 try + 2 retries, then nothing more: c never ran, a is not compensated.
    assert_eq!(
        saga.trace(),
        ["a.action", "b.action", "b.action", "b.action"]
    );
    let letters = sagas.dead_letters().list().unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        (
            letter.id.as_str(),
            letter.saga_name.as_str(),
            letter.saga_id.as_str(),
            letter.step_index,
            letter.step_name.as_str(),
            letter.phase,
            letter.attempts
        ),
        (letter_id, "scripted", "d-1", 1, "b", StepPhase::Action, 3)
    );
    assert!(matches!(
        sagas.status::<Scripted>("d-1").await.unwrap(),
        Some(SagaStatus::Parked { .. })
    ));
    // A resume leaves a parked saga parked.
    let resumed = sagas.resume_incomplete().await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert!(matches!(resumed[0].1, SagaOutcome::Parked { .. }));
    assert_eq!(saga.trace().len(), 4);

    broken.store(false, Ordering::SeqCst);
    let outcome = sagas.dead_letters().replay(letter_id).await.unwrap();

    assert_eq!(outcome, SagaOutcome::Completed);
    assert_eq!(
        saga.trace()[4..],
        ["b.action", "c.action"],
        "the parked command runs again, then the rest"
    );
    let keys: Vec<String> = saga
        .calls()
        .iter()
        .filter(|c| c.step == "b")
        .map(|c| c.idempotency_key.clone())
        .collect();
    assert!(keys.iter().all(|k| k == &keys[0]), "same key on replay");
    assert!(sagas.dead_letters().list().unwrap().is_empty());
    assert!(matches!(
        sagas.dead_letters().replay(letter_id).await,
        Err(Error::DeadLetterNotFound { .. })
    ));
    assert!(sagas.resume_incomplete().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_replay_that_fails_again_parks_the_saga_on_the_same_letter() {
    let sagas = sagas().await;
    let broken = Arc::new(AtomicBool::new(true));
    sagas.register(saga(&["a"], "a", StepPhase::Action, &broken));
    sagas.start::<Scripted>("d-2", String::new()).await.unwrap();

    let outcome = sagas
        .dead_letters()
        .replay("scripted/d-2/0/action")
        .await
        .unwrap();

    assert!(matches!(outcome, SagaOutcome::Parked { .. }), "{outcome:?}");
    let letters = sagas.dead_letters().list().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 6, "3 tries, then 3 more");
}

#[tokio::test]
async fn discarding_a_parked_action_compensates_the_completed_steps() {
    let sagas = sagas().await;
    let broken = Arc::new(AtomicBool::new(true));
    let saga = saga(&["a", "b", "c"], "c", StepPhase::Action, &broken);
    sagas.register(saga.clone());
    sagas.start::<Scripted>("d-3", String::new()).await.unwrap();

    let outcome = sagas
        .dead_letters()
        .discard("scripted/d-3/2/action")
        .await
        .unwrap();

    assert!(
        matches!(&outcome, SagaOutcome::Compensated { failed_step, reason }
            if failed_step == "c" && reason.contains("discarded")),
        "{outcome:?}"
    );
    assert_eq!(
        saga.trace()[5..],
        ["b.compensation", "a.compensation"],
        "the discarded action is not compensated"
    );
    assert!(sagas.dead_letters().list().unwrap().is_empty());
}

#[tokio::test]
async fn discarding_a_parked_compensation_skips_it_and_compensation_goes_on() {
    let sagas = sagas().await;
    let broken = Arc::new(AtomicBool::new(true));
    let saga = saga(&["a", "b", "reject"], "b", StepPhase::Compensation, &broken);
    sagas.register(saga.clone());

    let outcome = sagas.start::<Scripted>("d-4", String::new()).await.unwrap();
    assert!(
        matches!(&outcome, SagaOutcome::Parked { step, phase: StepPhase::Compensation, .. } if step == "b"),
        "{outcome:?}"
    );

    let outcome = sagas
        .dead_letters()
        .discard("scripted/d-4/1/compensation")
        .await
        .unwrap();

    assert!(
        matches!(&outcome, SagaOutcome::Compensated { failed_step, .. } if failed_step == "reject"),
        "{outcome:?}"
    );
    assert_eq!(
        saga.trace(),
        [
            "a.action",
            "b.action",
            "reject.action",
            "b.compensation",
            "b.compensation",
            "b.compensation",
            "a.compensation"
        ]
    );
    assert!(sagas.dead_letters().list().unwrap().is_empty());
}
