//! The thread that runs what a step leaves for after its answers (the commit mark's sync,
//! see `CommitMark::confirmation`), so that the next step need not wait for it: on sled
//! the mark's sync took about 140 us of a 10-client cycle of 400 us when the confirmer ran
//! it before the next flush. Only small steps hand it over (see `confirmer::run`): after a
//! big one, its wait lets the writer's next group grow.

use crate::backend::Settle;
use crate::error::Error;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Settles waiting, in the order they were handed over, and whether one runs.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Settle>,
    running: bool,
    closed: bool,
}

/// Runs settles in order on its own thread; the thread ends, once the settles handed over
/// are done, when the handle is dropped.
pub(super) struct Settler {
    queue: Arc<(Mutex<Queue>, Condvar)>,
}

impl Drop for Settler {
    fn drop(&mut self) {
        let (queue, wake) = &*self.queue;
        queue.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        wake.notify_all();
    }
}

impl Settler {
    /// Starts the thread.
    pub(super) fn start() -> std::io::Result<Self> {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let shared = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("rush-settle".into())
            .spawn(move || {
                let (queue, wake) = &*shared;
                let mut state = queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(settle) = state.waiting.pop_front() {
                        state.running = true;
                        drop(state);
                        run(settle);
                        let mut done = queue.lock().unwrap_or_else(PoisonError::into_inner);
                        done.running = false;
                        drop(done);
                        wake.notify_all();
                        state = queue.lock().unwrap_or_else(PoisonError::into_inner);
                    } else if state.closed {
                        break;
                    } else {
                        state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
                    }
                }
            })?;
        Ok(Self { queue })
    }

    /// Hands `settle` over; it runs after those handed over before it. The thread is
    /// woken after the lock is let go: woken under it, it can run at once on this core,
    /// find the lock held and sleep again until this thread is back (seen in a scheduler
    /// trace, one actor on sled: the mark's sync then started about 150 us late).
    pub(super) fn submit(&self, settle: Settle) {
        let (queue, wake) = &*self.queue;
        queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
            .push_back(settle);
        wake.notify_all();
    }

    /// Waits until every settle handed over before is done.
    pub(super) fn barrier(&self) {
        let (queue, wake) = &*self.queue;
        let mut state = queue.lock().unwrap_or_else(PoisonError::into_inner);
        while state.running || !state.waiting.is_empty() {
            state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Runs one settle on the caller's thread. The engine keeps a failure and reports it at its next step, so here
/// it is only logged.
pub(super) fn run(settle: Settle) {
    let settled = catch_unwind(AssertUnwindSafe(settle))
        .unwrap_or_else(|panic| Err(Error::panicked("settle a flush", &*panic)));
    if let Err(error) = settled {
        tracing::error!(%error, "after a flush was acknowledged, its last step failed");
    }
}
