//! The confirmer's unit tests: run-ahead, failures, settles and waking the writer.

use super::*;
use crate::backend::Settle;
use std::sync::mpsc;
use std::time::Duration;

/// A step that waits for `release` before it succeeds.
fn blocked(release: mpsc::Receiver<()>) -> Confirmation {
    Box::new(move || {
        release.recv().map_err(|_| Error::Shutdown)?;
        Ok(None)
    })
}

fn start() -> Result<Confirmer> {
    Confirmer::start(Arc::default(), Box::new(|| {}), Arc::default())
        .map_err(|e| Error::from_io("t", &e))
}

fn answers(
    n: usize,
) -> (
    Vec<Answer>,
    Vec<crate::database::reply::Waiting<CommitOutcome>>,
) {
    (0..n)
        .map(|_| {
            let (reply, waiting) = Reply::blocking();
            (Answer::Commit(reply), waiting)
        })
        .unzip()
}

#[test]
fn the_writer_runs_ahead_of_a_running_step_only_until_the_waiting_step_is_big() -> Result<()> {
    let confirmer = start()?;
    let (release, releases) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    let (first, _first_waiting) = answers(1);
    confirmer.submit(Confirm {
        step: Some(Box::new(move || {
            started_tx.send(()).map_err(|_| Error::Shutdown)?;
            releases.recv().map_err(|_| Error::Shutdown)?;
            Ok(None)
        })),
        generation: 1,
        answers: first,
    });
    // Running (not only waiting to run) before anything queues behind it: on a loaded
    // machine the confirmer's thread may not have taken it yet.
    started.recv().map_err(|_| Error::Shutdown)?;
    // Small groups behind the running step: each submit returns at once.
    for generation in 2..4 {
        let (small, _) = answers(RUN_AHEAD_MEMBERS / 4);
        confirmer.submit(Confirm {
            step: None,
            generation,
            answers: small,
        });
    }
    // Enough members waiting: the next submit waits for the running step.
    let (big, big_waiting) = answers(RUN_AHEAD_MEMBERS);
    let confirmer = Arc::new(confirmer);
    let submitter = std::thread::spawn({
        let confirmer = Arc::clone(&confirmer);
        move || {
            confirmer.submit(Confirm {
                step: None,
                generation: 4,
                answers: big,
            });
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(!submitter.is_finished(), "the writer waits for the step");
    release.send(()).map_err(|_| Error::Shutdown)?;
    submitter.join().map_err(|_| Error::Shutdown)?;
    for waiting in big_waiting {
        assert!(matches!(waiting.wait()?, Ok(Ok(()))));
    }
    assert!(!confirmer.take_failure());
    Ok(())
}

#[test]
fn a_failed_step_is_reported_once() -> Result<()> {
    let confirmer = start()?;
    let failing: Confirmation = Box::new(|| Err(Error::Shutdown));
    let (reply, waiting) = Reply::blocking();
    confirmer.submit(Confirm {
        step: Some(failing),
        generation: 1,
        answers: vec![Answer::Commit(reply)],
    });
    assert!(matches!(waiting.wait()?, Err(Error::Shutdown)));
    confirmer.barrier();
    assert!(confirmer.take_failure());
    assert!(!confirmer.take_failure(), "reported once");
    Ok(())
}

#[test]
fn answers_go_before_the_settle_the_next_step_runs_beside_it_and_its_answers_wait_for_it()
-> Result<()> {
    let confirmer = Arc::new(start()?);
    let order = Arc::new(Mutex::new(Vec::<&str>::new()));
    let (release, released) = mpsc::channel::<()>();
    let step: Confirmation = Box::new({
        let order = Arc::clone(&order);
        move || {
            let settle: Settle = Box::new(move || {
                released.recv().map_err(|_| Error::Shutdown)?;
                order.lock().map_err(|_| Error::Shutdown)?.push("settled");
                Ok(())
            });
            Ok(Some(settle))
        }
    });
    let (reply, waiting) = Reply::blocking();
    confirmer.submit(Confirm {
        step: Some(step),
        generation: 1,
        answers: vec![Answer::Commit(reply)],
    });
    // Answered while the settle still waits.
    assert!(matches!(waiting.wait()?, Ok(Ok(()))));
    // The next step runs while the settle still waits...
    let (ran_tx, ran) = mpsc::channel::<()>();
    let (reply, waiting) = Reply::blocking();
    confirmer.submit(Confirm {
        step: Some(Box::new(move || {
            ran_tx.send(()).map_err(|_| Error::Shutdown)?;
            Ok(None)
        })),
        generation: 2,
        answers: vec![Answer::Commit(reply)],
    });
    assert!(
        ran.recv_timeout(Duration::from_secs(10)).is_ok(),
        "the next step runs beside the settle"
    );
    // ...but its answer, and a barrier, wait for the settle.
    let answered = std::thread::spawn({
        let order = Arc::clone(&order);
        move || {
            let outcome = waiting.wait();
            if let Ok(mut order) = order.lock() {
                order.push("answered");
            }
            outcome
        }
    });
    let barrier = std::thread::spawn({
        let confirmer = Arc::clone(&confirmer);
        move || confirmer.barrier()
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(!answered.is_finished(), "the answer waits for the settle");
    assert!(!barrier.is_finished(), "the barrier waits for the settle");
    release.send(()).map_err(|_| Error::Shutdown)?;
    barrier.join().map_err(|_| Error::Shutdown)?;
    let outcome = answered.join().map_err(|_| Error::Shutdown)?;
    assert!(matches!(outcome?, Ok(Ok(()))));
    assert_eq!(
        *order.lock().map_err(|_| Error::Shutdown)?,
        ["settled", "answered"]
    );
    assert!(!confirmer.busy());
    Ok(())
}

#[test]
fn the_writer_is_woken_once_no_step_runs_or_waits() -> Result<()> {
    let (woke, wakes) = mpsc::channel::<()>();
    let woke = Mutex::new(woke);
    let confirmer = Confirmer::start(
        Arc::default(),
        Box::new(move || {
            let _ = woke.lock().map(|woke| woke.send(()));
        }),
        Arc::default(),
    )
    .map_err(|e| Error::from_io("t", &e))?;
    assert!(
        !confirmer.wake_when_done(),
        "nothing runs: nothing will wake"
    );
    let (first_release, first_released) = mpsc::channel();
    let (second_release, second_released) = mpsc::channel();
    let (started_tx, started) = mpsc::channel();
    confirmer.submit(Confirm {
        step: Some(Box::new(move || {
            started_tx.send(()).map_err(|_| Error::Shutdown)?;
            first_released.recv().map_err(|_| Error::Shutdown)?;
            Ok(None)
        })),
        generation: 1,
        answers: Vec::new(),
    });
    assert!(confirmer.wake_when_done());
    started.recv().map_err(|_| Error::Shutdown)?;
    // A step waiting behind the running one keeps the writer waiting.
    confirmer.submit(Confirm {
        step: Some(blocked(second_released)),
        generation: 2,
        answers: Vec::new(),
    });
    first_release.send(()).map_err(|_| Error::Shutdown)?;
    assert!(wakes.recv_timeout(Duration::from_millis(100)).is_err());
    second_release.send(()).map_err(|_| Error::Shutdown)?;
    assert!(wakes.recv_timeout(Duration::from_secs(10)).is_ok());
    let status = confirmer.status();
    assert!(!status.flushing);
    assert_eq!(status.finished, 2);
    assert!(
        wakes.recv_timeout(Duration::from_millis(50)).is_err(),
        "woken once"
    );
    Ok(())
}

#[test]
fn after_a_big_step_the_settle_runs_before_the_next_step() -> Result<()> {
    let confirmer = start()?;
    let (release, released) = mpsc::channel::<()>();
    let step: Confirmation = Box::new(move || {
        let settle: Settle = Box::new(move || {
            released.recv().map_err(|_| Error::Shutdown)?;
            Ok(())
        });
        Ok(Some(settle))
    });
    let (big, big_waiting) = answers(RUN_AHEAD_MEMBERS);
    confirmer.submit(Confirm {
        step: Some(step),
        generation: 1,
        answers: big,
    });
    for waiting in big_waiting {
        assert!(matches!(waiting.wait()?, Ok(Ok(()))));
    }
    let (ran_tx, ran) = mpsc::channel::<()>();
    let (one, waiting) = answers(1);
    confirmer.submit(Confirm {
        step: Some(Box::new(move || {
            ran_tx.send(()).map_err(|_| Error::Shutdown)?;
            Ok(None)
        })),
        generation: 2,
        answers: one,
    });
    assert!(
        ran.recv_timeout(Duration::from_millis(50)).is_err(),
        "the next step waits for the big step's settle"
    );
    release.send(()).map_err(|_| Error::Shutdown)?;
    assert!(ran.recv_timeout(Duration::from_secs(10)).is_ok());
    for waiting in waiting {
        assert!(matches!(waiting.wait()?, Ok(Ok(()))));
    }
    Ok(())
}
