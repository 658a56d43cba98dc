//! The writer's queue: an unbounded channel of jobs, each in a box of its own.
//!
//! std's channel keeps its messages in blocks of 31, allocated as it goes. With a [`Job`]
//! in place a block takes about 3 KiB, a request that glibc's malloc serves only after
//! consolidating its fast bins: 2% of all CPU in a 1,000-actor profile, paid on every 31st
//! send by whichever tokio worker sends it. Boxed, a block takes 504 bytes and each job one
//! small allocation, from the thread caches.

use super::Job;
use std::sync::mpsc::{self, RecvError, RecvTimeoutError, TryRecvError};
use std::time::Duration;

/// The sending side (shared through an `Arc` by every handle of the database).
#[derive(Debug)]
pub(crate) struct Jobs(mpsc::Sender<Box<Job>>);

impl Jobs {
    /// Queues `job`; gives it back if the writer's thread is gone.
    pub(crate) fn send(&self, job: Job) -> Result<(), Job> {
        self.0.send(Box::new(job)).map_err(|failed| *failed.0)
    }
}

/// The writer thread's side.
#[derive(Debug)]
pub(crate) struct Inbox(mpsc::Receiver<Box<Job>>);

impl Inbox {
    /// The next job, waiting for it.
    pub(crate) fn recv(&self) -> Result<Job, RecvError> {
        self.0.recv().map(|job| *job)
    }

    /// The next job, waiting at most `timeout`.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<Job, RecvTimeoutError> {
        self.0.recv_timeout(timeout).map(|job| *job)
    }

    /// The next job if one is queued.
    pub(crate) fn try_recv(&self) -> Result<Job, TryRecvError> {
        self.0.try_recv().map(|job| *job)
    }
}

/// A new, empty queue.
pub(crate) fn channel() -> (Jobs, Inbox) {
    let (jobs, inbox) = mpsc::channel();
    (Jobs(jobs), Inbox(inbox))
}
