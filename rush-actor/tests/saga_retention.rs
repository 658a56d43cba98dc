//! Finished sagas leave the saga index after the manager's retention, so the index holds
//! the sagas that may still need a resume, not the whole history; a finished saga's own
//! journal stays, so its status still answers. `resume_incomplete` reads the index a page
//! at a time and finds every saga that has not ended among many that have.
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
    DEFAULT_SAGA_RETENTION, Persistence, PersistenceConfig, SagaOutcome, SagaStatus, Sagas,
    StepError,
};
use rush_store::Table;
use scripted::Scripted;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The saga index's rows, as the manager writes them.
#[derive(Debug, Serialize, Deserialize)]
struct IndexRow {
    name: String,
    saga_id: String,
    finished: bool,
}

async fn open() -> (Sagas, Table<IndexRow>) {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    let index = persistence.database().table("rush.saga-index").unwrap();
    (Sagas::open(&persistence).unwrap(), index)
}

/// (finished rows, other rows) of the index.
fn census(index: &Table<IndexRow>) -> (usize, usize) {
    let rows = index.rows("").unwrap();
    let finished = rows.iter().filter(|(_, row)| row.finished).count();
    (finished, rows.len() - finished)
}

/// Two steps; the second fails every try while `broken` is set, which parks the saga.
fn scripted(broken: &Arc<AtomicBool>) -> Scripted {
    let broken = Arc::clone(broken);
    Scripted::new(&["a", "b"], move |step, _, _| {
        if step == "b" && broken.load(Ordering::SeqCst) {
            Err(StepError::Retryable("service unavailable".into()))
        } else {
            Ok(())
        }
    })
}

#[tokio::test]
async fn with_a_zero_retention_a_finished_saga_leaves_the_index_at_once() {
    let (sagas, index) = open().await;
    assert_eq!(sagas.finished_retention(), DEFAULT_SAGA_RETENTION);
    sagas
        .register(scripted(&Arc::default()))
        .set_finished_retention(Duration::ZERO);

    for i in 0..20 {
        let id = format!("z-{i:02}");
        let outcome = sagas.start::<Scripted>(&id, String::new()).await.unwrap();
        assert_eq!(outcome, SagaOutcome::Completed);
    }

    assert_eq!(census(&index), (0, 0));
    // The journal stays: the status still answers, and a start again does not rerun it.
    assert_eq!(
        sagas.status::<Scripted>("z-07").await.unwrap(),
        Some(SagaStatus::Finished(SagaOutcome::Completed))
    );
    let again = sagas.start::<Scripted>("z-07", String::new()).await;
    assert_eq!(again.unwrap(), SagaOutcome::Completed);
    assert_eq!(
        census(&index),
        (0, 0),
        "a finished saga's row is not written back"
    );
}

#[tokio::test]
async fn resume_prunes_rows_past_retention_and_finds_every_incomplete_saga() {
    let (sagas, index) = open().await;
    let broken = Arc::new(AtomicBool::new(true));
    sagas.register(scripted(&broken));
    // Parked sagas scattered among many finished ones, across several index pages.
    let parked: Vec<String> = (0..600).step_by(97).map(|i| format!("s-{i:04}")).collect();
    for id in &parked {
        let outcome = sagas.start::<Scripted>(id, String::new()).await.unwrap();
        assert!(matches!(outcome, SagaOutcome::Parked { .. }), "{outcome:?}");
    }
    broken.store(false, Ordering::SeqCst);
    for i in (0..600).filter(|i| i % 97 != 0) {
        let id = format!("s-{i:04}");
        let outcome = sagas.start::<Scripted>(&id, String::new()).await.unwrap();
        assert_eq!(outcome, SagaOutcome::Completed);
    }
    // Within the default retention, finished rows stay.
    assert_eq!(census(&index), (600 - parked.len(), parked.len()));

    sagas.set_finished_retention(Duration::ZERO);
    let resumed = sagas.resume_incomplete().await.unwrap();

    let mut ids: Vec<&str> = resumed.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, parked.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        resumed
            .iter()
            .all(|(_, outcome)| matches!(outcome, SagaOutcome::Parked { .. }))
    );
    assert_eq!(census(&index), (0, parked.len()));
    assert_eq!(
        sagas.status::<Scripted>("s-0001").await.unwrap(),
        Some(SagaStatus::Finished(SagaOutcome::Completed))
    );
}

#[tokio::test]
async fn finishing_sagas_sweeps_the_rows_that_passed_retention() {
    let (sagas, index) = open().await;
    sagas.register(scripted(&Arc::default()));
    for i in 0..300 {
        let id = format!("old-{i:03}");
        sagas.start::<Scripted>(&id, String::new()).await.unwrap();
    }
    assert_eq!(census(&index), (300, 0));

    // Each finish sweeps a few old rows along with its own, without a resume.
    sagas.set_finished_retention(Duration::ZERO);
    let mut finished = 0;
    while census(&index).0 > 0 {
        assert!(
            finished < 20,
            "{:?} rows left after {finished} sagas",
            census(&index)
        );
        let id = format!("new-{finished:03}");
        sagas.start::<Scripted>(&id, String::new()).await.unwrap();
        finished += 1;
    }
    assert_eq!(census(&index), (0, 0));
}

#[tokio::test]
async fn prune_finished_removes_every_row_past_retention_at_once() {
    let (sagas, index) = open().await;
    sagas.register(scripted(&Arc::default()));
    for i in 0..300 {
        let id = format!("p-{i:03}");
        sagas.start::<Scripted>(&id, String::new()).await.unwrap();
    }
    assert_eq!(sagas.prune_finished().await.unwrap(), 0, "within retention");

    sagas.set_finished_retention(Duration::ZERO);

    assert_eq!(sagas.prune_finished().await.unwrap(), 300);
    assert_eq!(census(&index), (0, 0));
}
