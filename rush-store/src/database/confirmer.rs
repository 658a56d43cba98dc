//! The part of making a group durable that runs off the writer's path. When the engine's
//! flush hands back a step (sled: its whole flush and fsync, then the commit mark's
//! write; redb: the mark's write), the writer hands it here with the answers it holds
//! back, and goes on committing the next groups while it runs. Steps handed over while
//! one runs are merged: only the newest runs (a step covers every commit applied before
//! it was handed over, the older ones too), and then every answer waiting is sent.
//! Answers and readers see a group only after a step covering it succeeded. What a step
//! leaves for after the answers (the mark's sync, see `CommitMark::confirmation`) runs
//! here too, before the next step: on sled that short wait lets the groups that arrive
//! meanwhile join the next flush.
//!
//! The writer runs at most one group ahead of a running step once that group is big
//! ([`RUN_AHEAD_MEMBERS`]): it waits in [`Confirmer::submit`] until the step is done, so
//! a busy writer keeps committing large groups instead of many small ones.

use super::reply::Reply;
use super::visibility::Visibility;
use super::writer::CommitOutcome;
use crate::backend::Confirmation;
use crate::error::{Error, Result};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// An answer held back until a step is done.
pub(crate) enum Answer {
    /// A write: committed once the step is done.
    Commit(Reply<CommitOutcome>),
    /// A flush, a stop or a barrier: done with the step.
    Flush(Reply<Result<()>>),
}

/// A step (`None`: nothing to run, only to keep the order of answers), the generation of
/// visibility holds it makes durable, and who waits for it.
pub(crate) struct Confirm {
    pub(crate) step: Option<Confirmation>,
    pub(crate) generation: u64,
    pub(crate) answers: Vec<Answer>,
}

/// What the thread has to do next, and whether it is running a step now.
#[derive(Default)]
struct Queue {
    next: Option<Confirm>,
    running: bool,
    closed: bool,
    /// A step failed since the writer last handed one over: what it covered may not be
    /// durable, and the writer flushes again (see [`Confirmer::take_failure`]).
    failed: bool,
}

/// Once the step waiting behind a running one holds this many answers, the writer waits
/// for the running step before it commits more. Below it, small groups (a few clients)
/// keep committing behind a running flush and join the next one together: measured at 10
/// clients on sled, 23k-26k commands/s in most runs against 19k when the writer waited
/// every time. Above it, waiting keeps a busy writer's groups, and its CPU per command,
/// where they were.
const RUN_AHEAD_MEMBERS: usize = 32;

/// The thread that runs steps; it ends when the handle is dropped.
pub(crate) struct Confirmer {
    queue: Arc<(Mutex<Queue>, Condvar)>,
}

impl Drop for Confirmer {
    fn drop(&mut self) {
        let (queue, wake) = &*self.queue;
        queue.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        wake.notify_all();
    }
}

impl Confirmer {
    /// Starts the thread.
    pub(crate) fn start(visibility: Arc<Visibility>) -> std::io::Result<Self> {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let shared = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("rush-confirm".into())
            .spawn(move || {
                let (queue, wake) = &*shared;
                let mut state = queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(confirm) = state.next.take() {
                        state.running = true;
                        drop(state);
                        let succeeded = run(&visibility, confirm);
                        state = queue.lock().unwrap_or_else(PoisonError::into_inner);
                        state.running = false;
                        state.failed |= !succeeded;
                        wake.notify_all();
                    } else if state.closed {
                        break;
                    } else {
                        state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
                    }
                }
            })?;
        Ok(Self { queue })
    }

    /// Whether a step handed over is not done yet.
    pub(crate) fn busy(&self) -> bool {
        let state = self.queue.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.running || state.next.is_some()
    }

    /// Whether a step failed since the last call (or the last [`Confirmer::submit`]):
    /// the writer must flush again what that step covered.
    pub(crate) fn take_failure(&self) -> bool {
        let mut state = self.queue.0.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut state.failed)
    }

    /// Hands `confirm` over: merged with a step still waiting to run (the newer step
    /// replaces the older, the answers join). Returns at once, unless a step is running
    /// and the one waiting behind it holds [`RUN_AHEAD_MEMBERS`] answers or more: then
    /// it returns once the running step is done.
    pub(crate) fn submit(&self, confirm: Confirm) {
        let (queue, wake) = &*self.queue;
        let mut state = queue.lock().unwrap_or_else(PoisonError::into_inner);
        // The step handed over now covers whatever a failed one did.
        state.failed = false;
        state.next = Some(match state.next.take() {
            None => confirm,
            Some(mut waiting) => {
                waiting.answers.extend(confirm.answers);
                Confirm {
                    step: confirm.step.or(waiting.step),
                    generation: confirm.generation,
                    answers: waiting.answers,
                }
            }
        });
        wake.notify_all();
        while state.running
            && !state.closed
            && state
                .next
                .as_ref()
                .is_some_and(|waiting| waiting.answers.len() >= RUN_AHEAD_MEMBERS)
        {
            state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until every step handed over before is done.
    pub(crate) fn barrier(&self) {
        let (queue, wake) = &*self.queue;
        let mut state = queue.lock().unwrap_or_else(PoisonError::into_inner);
        while state.running || state.next.is_some() {
            state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Runs one step, then answers; true when the step succeeded.
fn run(visibility: &Visibility, confirm: Confirm) -> bool {
    let outcome = match confirm.step {
        Some(step) => catch_unwind(AssertUnwindSafe(step))
            .unwrap_or_else(|panic| Err(Error::panicked("confirm a flush", &*panic))),
        None => Ok(None),
    };
    let (outcome, settle) = match outcome {
        Ok(settle) => (Ok(()), settle),
        Err(error) => (Err(error), None),
    };
    // Readers see what the step made durable; after a failure they wait for the writer's
    // next flush, whose step releases this generation with its own.
    let succeeded = outcome.is_ok();
    if succeeded {
        visibility.release(confirm.generation);
    }
    for answer in confirm.answers {
        match (answer, &outcome) {
            (Answer::Commit(done), Ok(())) => done.send(Ok(Ok(()))),
            (Answer::Commit(done), Err(error)) => done.send(Err(error.clone())),
            (Answer::Flush(done), outcome) => done.send(outcome.clone()),
        }
    }
    // What the answers did not wait for (the commit mark's sync); the engine keeps a
    // failure and reports it at the next step.
    if let Some(settle) = settle {
        let settled = catch_unwind(AssertUnwindSafe(settle))
            .unwrap_or_else(|panic| Err(Error::panicked("settle a flush", &*panic)));
        if let Err(error) = settled {
            tracing::error!(%error, "after a flush was acknowledged, its last step failed");
        }
    }
    succeeded
}

/// Answers every one of `answers` with `error`.
pub(crate) fn answer_all(answers: Vec<Answer>, error: &Error) {
    for answer in answers {
        match answer {
            Answer::Commit(done) => done.send(Err(error.clone())),
            Answer::Flush(done) => done.send(Err(error.clone())),
        }
    }
}

/// Answers every one of `answers`: done.
pub(crate) fn answer_all_ok(answers: Vec<Answer>) {
    for answer in answers {
        match answer {
            Answer::Commit(done) => done.send(Ok(Ok(()))),
            Answer::Flush(done) => done.send(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
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
        let queue = Arc::clone(&confirmer.queue);
        let submitter = std::thread::spawn(move || {
            Confirmer { queue }.submit(Confirm {
                step: None,
                generation: 4,
                answers: big,
            });
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
    fn answers_go_before_the_settle_and_a_barrier_waits_for_it() -> Result<()> {
        let confirmer = Confirmer::start(Arc::default()).map_err(|e| Error::from_io("t", &e))?;
        let (release, released) = mpsc::channel::<()>();
        let (settled_tx, settled) = mpsc::channel::<()>();
        let step: Confirmation = Box::new(move || {
            let settle: Settle = Box::new(move || {
                released.recv().map_err(|_| Error::Shutdown)?;
                settled_tx.send(()).map_err(|_| Error::Shutdown)?;
                Ok(())
            });
            Ok(Some(settle))
        });
        let (reply, waiting) = Reply::blocking();
        confirmer.submit(Confirm {
            step: Some(step),
            generation: 1,
            answers: vec![Answer::Commit(reply)],
        });
        // Answered while the settle still waits.
        assert!(matches!(waiting.wait()?, Ok(Ok(()))));
        assert!(
            confirmer.busy(),
            "the settle runs on the confirmer's thread"
        );
        assert!(settled.recv_timeout(Duration::from_millis(20)).is_err());
        let barrier = std::thread::spawn({
            let queue = Arc::clone(&confirmer.queue);
            move || Confirmer { queue }.barrier()
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(!barrier.is_finished(), "the barrier waits for the settle");
        release.send(()).map_err(|_| Error::Shutdown)?;
        barrier.join().map_err(|_| Error::Shutdown)?;
        assert!(
            settled.try_recv().is_ok(),
            "the barrier returned after the settle"
        );
        assert!(!confirmer.busy());
        Ok(())
    }
}
