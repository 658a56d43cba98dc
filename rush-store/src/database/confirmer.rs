//! The last step of making a group durable, off the writer's path. When the engine's
//! flush leaves a step (the commit mark's write), the writer hands it here with
//! the answers it holds back, and goes on with the next group while it runs; so the step
//! costs the writer nothing. Steps handed over while one runs are merged: only
//! the newest runs (a mark covering more commits covers the older ones too, and the
//! engine flushed them all before it was handed over), and then every answer waiting is
//! sent. Answers and readers see a group only after a step covering it. What a step
//! leaves for after the answers (the mark's sync, see `CommitMark::confirmation`) runs
//! here too, before the next step.

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
}

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
                        run(&visibility, confirm);
                        state = queue.lock().unwrap_or_else(PoisonError::into_inner);
                        state.running = false;
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

    /// Hands `confirm` over without waiting: merged with a step still waiting to run
    /// (the newer step replaces the older, the answers join).
    pub(crate) fn submit(&self, confirm: Confirm) {
        let (queue, wake) = &*self.queue;
        let mut state = queue.lock().unwrap_or_else(PoisonError::into_inner);
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

fn run(visibility: &Visibility, confirm: Confirm) {
    let outcome = match confirm.step {
        Some(step) => catch_unwind(AssertUnwindSafe(step))
            .unwrap_or_else(|panic| Err(Error::panicked("confirm a flush", &*panic))),
        None => Ok(None),
    };
    let (outcome, settle) = match outcome {
        Ok(settle) => (Ok(()), settle),
        Err(error) => (Err(error), None),
    };
    // The engine's files are durable whatever the step did: readers may see them.
    visibility.release(confirm.generation);
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
