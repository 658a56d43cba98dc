//! The part of making a group durable that runs off the writer's path. When the engine's
//! flush hands back a step (sled: its whole flush and fsync, then the commit mark's
//! write; redb: the mark's write), the writer hands it here with the answers it holds
//! back, and goes on taking the next jobs while it runs (it commits them beside the step
//! once many wait, see `writer/gather.rs`). Steps handed over while
//! one runs are merged: only the newest runs (a step covers every commit applied before
//! it was handed over, the older ones too), and then every answer waiting is sent.
//! Answers and readers see a group only after a step covering it succeeded. What a step
//! leaves for after the answers (the mark's sync, see `CommitMark::confirmation`) runs on
//! a thread of its own ([`settler`]), beside the next step, unless the step answered many
//! clients. What each step showed ([`LastStep`]) is kept for the writer, which gathers
//! the next group from it (`writer/gather.rs`), and a writer that waits for the running
//! step to finish is woken then.
//!
//! The writer runs at most one group ahead of a running step once that group is big
//! ([`RUN_AHEAD_MEMBERS`]): it waits in [`Confirmer::submit`] until the step is done, so
//! a busy writer keeps committing large groups instead of many small ones.

mod settler;

use super::reply::Reply;
use super::visibility::Visibility;
use super::writer::CommitOutcome;
use crate::backend::Confirmation;
use crate::error::{Error, Result};
use settler::Settler;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
    /// The running step's engine work (the flush) is not done yet.
    stepping: bool,
    /// Steps finished so far, and what the last one showed.
    finished: u64,
    last: Option<LastStep>,
    /// The writer holds writes until the running step is done: wake it then.
    wake_writer: bool,
}

impl Queue {
    /// A step's flush runs, or a step waits to run.
    fn flushing(&self) -> bool {
        self.stepping || self.next.is_some()
    }
}

/// What a finished step showed: the writer gathers the next group from it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LastStep {
    /// Answers it sent.
    pub(crate) answered: usize,
    /// Writes the writer held when the step itself was done (before its answers went
    /// out, so none of them comes from a client it answered).
    pub(crate) waiting: usize,
    /// How long the step itself took.
    pub(crate) took: Duration,
    /// When its answers started to go out.
    pub(crate) answered_at: Instant,
    pub(crate) succeeded: bool,
}

/// The confirmer as the writer sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Status {
    /// A step's flush runs, or a step waits to run ([`Queue::flushing`]): unlike
    /// [`Confirmer::busy`], false once the flush is done while its answers still go out.
    pub(crate) flushing: bool,
    /// Steps finished so far: a new count is a new [`Status::last`].
    pub(crate) finished: u64,
    pub(crate) last: Option<LastStep>,
}

/// How the confirmer wakes the writer (it sends the writer's thread a wake-up job).
pub(crate) type WakeWriter = Box<dyn Fn() + Send + Sync>;

/// Once the step waiting behind a running one holds this many answers, the writer waits
/// for the running step before it commits more. Below it, the writer holds a few clients'
/// writes uncommitted while a step runs and commits them as one group once it is done
/// (`writer/gather.rs`): on sled every commit costs two synchronous writes of its own.
/// Above it, committing beside the running step keeps a busy writer's groups, and its CPU
/// per command, where they were.
pub(crate) const RUN_AHEAD_MEMBERS: usize = 32;

/// The thread that runs steps; it ends when the handle is dropped.
pub(crate) struct Confirmer {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    settler: Arc<Settler>,
}

impl Drop for Confirmer {
    fn drop(&mut self) {
        let (queue, wake) = &*self.queue;
        queue.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        wake.notify_all();
    }
}

impl Confirmer {
    /// Starts the thread; `wake_writer` is called when a step the writer waits for is done,
    /// and `held` is read when a step is done (see [`LastStep::waiting`]).
    pub(crate) fn start(
        visibility: Arc<Visibility>,
        wake_writer: WakeWriter,
        held: Arc<AtomicUsize>,
    ) -> std::io::Result<Self> {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let shared = Arc::clone(&queue);
        let settler = Arc::new(Settler::start()?);
        let settles = Arc::clone(&settler);
        std::thread::Builder::new()
            .name("rush-confirm".into())
            .spawn(move || {
                let (queue, wake) = &*shared;
                let mut state = queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(confirm) = state.next.take() {
                        state.running = true;
                        state.stepping = true;
                        drop(state);
                        let waiting = || held.load(Ordering::SeqCst);
                        run(&visibility, &settles, confirm, waiting, |last| {
                            let mut done = queue.lock().unwrap_or_else(PoisonError::into_inner);
                            done.stepping = false;
                            done.failed |= !last.succeeded;
                            done.finished = done.finished.wrapping_add(1);
                            done.last = Some(last);
                            // A step waiting behind this one keeps the writer waiting.
                            let wake_writer_now = done.wake_writer && done.next.is_none();
                            done.wake_writer &= !wake_writer_now;
                            drop(done);
                            if wake_writer_now {
                                wake_writer();
                            }
                        });
                        let mut done = queue.lock().unwrap_or_else(PoisonError::into_inner);
                        done.running = false;
                        drop(done);
                        // Woken after the lock is let go (see `Confirmer::submit`).
                        wake.notify_all();
                        state = queue.lock().unwrap_or_else(PoisonError::into_inner);
                    } else if state.closed {
                        break;
                    } else {
                        state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
                    }
                }
            })?;
        Ok(Self { queue, settler })
    }

    /// Whether a step runs or waits, and what the last finished one showed.
    pub(crate) fn status(&self) -> Status {
        let state = self.queue.0.lock().unwrap_or_else(PoisonError::into_inner);
        Status {
            flushing: state.flushing(),
            finished: state.finished,
            last: state.last,
        }
    }

    /// Asks to be woken (the `wake_writer` of [`Confirmer::start`]) once no step's flush
    /// runs or waits ([`Status::flushing`]). False when none does now: nothing will wake
    /// the caller.
    pub(crate) fn wake_when_done(&self) -> bool {
        let mut state = self.queue.0.lock().unwrap_or_else(PoisonError::into_inner);
        let flushing = state.flushing();
        state.wake_writer |= flushing;
        flushing
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
        let run_ahead = |state: &Queue| {
            state.running
                && !state.closed
                && state
                    .next
                    .as_ref()
                    .is_some_and(|waiting| waiting.answers.len() >= RUN_AHEAD_MEMBERS)
        };
        let wait = run_ahead(&state);
        // The thread is woken after the lock is let go: a thread woken under a lock runs at
        // once on a small machine, finds the lock held and sleeps again (two wake-ups and
        // two switches for one).
        drop(state);
        wake.notify_all();
        if !wait {
            return;
        }
        let mut state = queue.lock().unwrap_or_else(PoisonError::into_inner);
        while run_ahead(&state) {
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
        drop(state);
        self.settler.barrier();
    }
}

/// Runs one step, tells `stepped` what it showed, then answers, and hands what the step
/// leaves for after the answers to `settler`. `waiting` counts the writes the writer holds
/// now.
fn run(
    visibility: &Visibility,
    settler: &Settler,
    confirm: Confirm,
    waiting: impl FnOnce() -> usize,
    stepped: impl FnOnce(LastStep),
) {
    let started = Instant::now();
    let outcome = match confirm.step {
        Some(step) => catch_unwind(AssertUnwindSafe(step))
            .unwrap_or_else(|panic| Err(Error::panicked("confirm a flush", &*panic))),
        None => Ok(None),
    };
    let took = started.elapsed();
    let waiting = waiting();
    let (outcome, settle) = match outcome {
        Ok(settle) => (Ok(()), settle),
        Err(error) => (Err(error), None),
    };
    let answered = confirm.answers.len();
    let succeeded = outcome.is_ok();
    stepped(LastStep {
        answered,
        waiting,
        took,
        answered_at: Instant::now(),
        succeeded,
    });
    // The last step's settle ran beside this step; its readers and answers wait for it, so
    // that at most one group shown or acknowledged has its mark unsynced at any time, as
    // when settles ran before the next step.
    settler.barrier();
    // Readers see what the step made durable; after a failure they wait for the writer's
    // next flush, whose step releases this generation with its own.
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
    // What the answers did not wait for (the commit mark's sync) runs beside the next
    // step, unless the step answered many clients: then it runs here, and the writer's
    // next group grows meanwhile (measured at 100 and 1,000 actors on sled: settles beside
    // the next step made more, smaller flushes and cost about a fifth of the rate).
    if let Some(settle) = settle {
        if answered >= RUN_AHEAD_MEMBERS {
            settler::run(settle);
        } else {
            settler.submit(settle);
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
mod tests;
