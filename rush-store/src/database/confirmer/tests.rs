//! The confirmer's unit tests: run-ahead, failures, settles and gathering.

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
    let confirmer = Confirmer::start(Arc::default()).map_err(|e| Error::from_io("t", &e))?;
    let (release, releases) = mpsc::channel::<()>();
    let (first, _first_waiting) = answers(1);
    confirmer.submit(Confirm {
        step: Some(blocked(releases)),
        generation: 1,
        answers: first,
    });
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
    let confirmer = Confirmer::start(Arc::default()).map_err(|e| Error::from_io("t", &e))?;
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
    let confirmer =
        Arc::new(Confirmer::start(Arc::default()).map_err(|e| Error::from_io("t", &e))?);
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
fn a_step_gathers_the_clients_the_last_one_answered() -> Result<()> {
    // A long window, so that the test does not depend on the machine's speed.
    let confirmer = Confirmer::start_gathering(Arc::default(), Duration::from_secs(10))
        .map_err(|e| Error::from_io("t", &e))?;
    let steps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = |steps: &Arc<std::sync::atomic::AtomicUsize>, hold: Duration| {
        let steps = Arc::clone(steps);
        let step: Confirmation = Box::new(move || {
            std::thread::sleep(hold);
            steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(None)
        });
        step
    };
    // A step of four clients that takes a while: the next step expects four.
    let (four, four_waiting) = answers(4);
    confirmer.submit(Confirm {
        step: Some(counted(&steps, Duration::from_millis(50))),
        generation: 1,
        answers: four,
    });
    for waiting in four_waiting {
        assert!(matches!(waiting.wait()?, Ok(Ok(()))));
    }
    // They write again one by one: one step covers all four.
    let mut again = Vec::new();
    for generation in 2..6 {
        let (one, waiting) = answers(1);
        again.extend(waiting);
        confirmer.submit(Confirm {
            step: Some(counted(&steps, Duration::ZERO)),
            generation,
            answers: one,
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    for waiting in again {
        assert!(matches!(waiting.wait()?, Ok(Ok(()))));
    }
    assert_eq!(steps.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A lone client that is not joined runs once the window (the last step's time,
    // under a millisecond) has passed, and a barrier does not wait for the window.
    let (one, waiting) = answers(1);
    confirmer.submit(Confirm {
        step: Some(counted(&steps, Duration::ZERO)),
        generation: 6,
        answers: one,
    });
    confirmer.barrier();
    for waiting in waiting {
        assert!(matches!(waiting.wait()?, Ok(Ok(()))));
    }
    assert_eq!(steps.load(std::sync::atomic::Ordering::SeqCst), 3);
    Ok(())
}

#[test]
fn after_a_big_step_the_settle_runs_before_the_next_step() -> Result<()> {
    let confirmer = Confirmer::start(Arc::default()).map_err(|e| Error::from_io("t", &e))?;
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
