//! The part of making a group durable that runs off the writer's path. When the engine's
//! flush hands back a step (sled: its whole flush and fsync, then the commit mark's
//! write; redb: the mark's write), the writer hands it here with the answers it holds
//! back, and goes on committing the next groups while it runs. Steps handed over while
//! one runs are merged: only the newest runs (a step covers every commit applied before
//! it was handed over, the older ones too), and then every answer waiting is sent.
//! Answers and readers see a group only after a step covering it succeeded. What a step
//! leaves for after the answers (the mark's sync, see `CommitMark::confirmation`) runs on
//! a thread of its own ([`settler`]), beside the next step, unless the step answered many
//! clients. The step after a finished one
//! waits briefly for the clients that one answered, so that they share a flush
//! ([`Gather`]).
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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
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
    /// Someone waits for every step handed over ([`Confirmer::barrier`]): the next one
    /// runs without gathering.
    hurry: bool,
}

/// Once the step waiting behind a running one holds this many answers, the writer waits
/// for the running step before it commits more. Below it, small groups (a few clients)
/// keep committing behind a running flush and join the next one together: measured at 10
/// clients on sled, 23k-26k commands/s in most runs against 19k when the writer waited
/// every time. Above it, waiting keeps a busy writer's groups, and its CPU per command,
/// where they were.
const RUN_AHEAD_MEMBERS: usize = 32;

/// The longest a step waits for the clients the last step answered (see [`Gather`]).
const MAX_GATHER: Duration = Duration::from_millis(1);

/// Holds the step after a finished one back briefly, so that it covers the clients that
/// finished one answered, as well as those already waiting (PostgreSQL's `commit_delay`,
/// sized by itself). Clients that wait for each answer before they write again (an ask)
/// otherwise split into cohorts that take turns: at 10 clients on sled, two flushes of
/// about 5 each instead of one of 10.
///
/// The next step waits until it holds as many answers as the last step answered plus
/// those waiting when it was done (at most [`RUN_AHEAD_MEMBERS`], where the writer waits
/// instead), or until as long as the last step took (at most `max`) has passed since its
/// answers went out. A lone client never waits: the step it wakes holds its write. A
/// barrier, a flush or a shutdown runs the step at once.
struct Gather {
    max: Duration,
    expected: usize,
    until: Option<Instant>,
}

impl Gather {
    fn new(max: Duration) -> Self {
        Self {
            max,
            expected: 0,
            until: None,
        }
    }

    /// Sets the next gathering from the step that just ran.
    fn after(&mut self, ran: &Ran) {
        self.expected = ran
            .answered
            .saturating_add(ran.waiting)
            .min(RUN_AHEAD_MEMBERS);
        self.until = ran
            .succeeded
            .then(|| ran.answered_at.checked_add(ran.took.min(self.max)))
            .flatten();
    }

    /// Waits while the step waiting in `state` may still gather answers.
    fn wait<'a>(
        &mut self,
        mut state: MutexGuard<'a, Queue>,
        wake: &Condvar,
    ) -> MutexGuard<'a, Queue> {
        let Some(until) = self.until.take() else {
            return state;
        };
        loop {
            let short = state.next.as_ref().is_some_and(|waiting| {
                waiting.answers.len() < self.expected
                    && !waiting
                        .answers
                        .iter()
                        .any(|answer| matches!(answer, Answer::Flush(_)))
            });
            let left = until.saturating_duration_since(Instant::now());
            if !short || state.closed || state.hurry || left.is_zero() {
                return state;
            }
            state = match wake.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

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
    /// Starts the thread.
    pub(crate) fn start(visibility: Arc<Visibility>) -> std::io::Result<Self> {
        Self::start_gathering(visibility, MAX_GATHER)
    }

    /// Starts the thread, gathering for at most `max_gather` (see [`Gather`]).
    fn start_gathering(visibility: Arc<Visibility>, max_gather: Duration) -> std::io::Result<Self> {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let shared = Arc::clone(&queue);
        let settler = Arc::new(Settler::start()?);
        let settles = Arc::clone(&settler);
        std::thread::Builder::new()
            .name("rush-confirm".into())
            .spawn(move || {
                let (queue, wake) = &*shared;
                let mut gather = Gather::new(max_gather);
                let mut state = queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if state.next.is_some() {
                        state = gather.wait(state, wake);
                        let Some(confirm) = state.next.take() else {
                            continue;
                        };
                        state.running = true;
                        state.hurry = false;
                        drop(state);
                        let ran = run(&visibility, &settles, confirm, || {
                            let state = queue.lock().unwrap_or_else(PoisonError::into_inner);
                            state
                                .next
                                .as_ref()
                                .map_or(0, |waiting| waiting.answers.len())
                        });
                        gather.after(&ran);
                        let mut done = queue.lock().unwrap_or_else(PoisonError::into_inner);
                        done.running = false;
                        done.failed |= !ran.succeeded;
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
        state.hurry = true;
        wake.notify_all();
        while state.running || state.next.is_some() {
            state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        drop(state);
        self.settler.barrier();
    }
}

/// What running one step showed: the next step's gathering is set from it.
struct Ran {
    succeeded: bool,
    /// Answers sent.
    answered: usize,
    /// Answers waiting for the next step when this one's step was done (before its own
    /// answers went out, so none of them comes from a client it answered).
    waiting: usize,
    /// How long the step itself took.
    took: Duration,
    /// When the answers went out.
    answered_at: Instant,
}

/// Runs one step, then answers, and hands what the step leaves for after the answers to
/// `settler`. `waiting` counts the answers the next step holds now.
fn run(
    visibility: &Visibility,
    settler: &Settler,
    confirm: Confirm,
    waiting: impl FnOnce() -> usize,
) -> Ran {
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
    // The last step's settle ran beside this step; its readers and answers wait for it, so
    // that at most one group shown or acknowledged has its mark unsynced at any time, as
    // when settles ran before the next step.
    settler.barrier();
    // Readers see what the step made durable; after a failure they wait for the writer's
    // next flush, whose step releases this generation with its own.
    let succeeded = outcome.is_ok();
    if succeeded {
        visibility.release(confirm.generation);
    }
    let answered = confirm.answers.len();
    for answer in confirm.answers {
        match (answer, &outcome) {
            (Answer::Commit(done), Ok(())) => done.send(Ok(Ok(()))),
            (Answer::Commit(done), Err(error)) => done.send(Err(error.clone())),
            (Answer::Flush(done), outcome) => done.send(outcome.clone()),
        }
    }
    let answered_at = Instant::now();
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
    Ran {
        succeeded,
        answered,
        waiting,
        took,
        answered_at,
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
