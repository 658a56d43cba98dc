//! Definitions are found by name: an unregistered one is an error a caller can act on, and
//! registering a name again deploys a fixed definition for the sagas driven from then on.
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

use rush_actor::{Error, Persistence, PersistenceConfig, SagaOutcome, Sagas, StepError};
use scripted::{Scripted, ok};

async fn sagas() -> Sagas {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    Sagas::open(&persistence).unwrap()
}

#[tokio::test]
async fn an_unregistered_definition_is_refused() {
    let sagas = sagas().await;
    let started = sagas.start::<Scripted>("x", String::new()).await;
    assert!(
        matches!(&started, Err(Error::UnknownSaga { name }) if name == "scripted"),
        "{started:?}"
    );
    sagas.register(Scripted::new(&["a"], ok));
    assert_eq!(sagas.status::<Scripted>("never").await.unwrap(), None);
}

#[tokio::test]
async fn a_fixed_definition_registered_again_finishes_a_parked_saga_on_replay() {
    let sagas = sagas().await;
    let broken = Scripted::new(&["a", "b"], |step, _, _| {
        if step == "b" {
            Err(StepError::Retryable("bug: wrong endpoint".into()))
        } else {
            Ok(())
        }
    });
    sagas.register(broken.clone());
    let outcome = sagas
        .start::<Scripted>("fix-1", String::new())
        .await
        .unwrap();
    let SagaOutcome::Parked { dead_letter, .. } = outcome else {
        panic!("expected parked, got {outcome:?}");
    };

    let fixed = Scripted::new(&["a", "b"], ok);
    sagas.register(fixed.clone());
    let outcome = sagas.dead_letters().replay(&dead_letter).await.unwrap();

    assert_eq!(outcome, SagaOutcome::Completed);
    assert_eq!(
        fixed.trace(),
        ["b.action"],
        "only the parked command runs again"
    );
    assert_eq!(
        broken.trace().len(),
        4,
        "the old definition is no longer used"
    );
}
