//! Where the answer to a job goes: a caller blocked on a thread of its own (the
//! synchronous API), or a future (the async API). Neither side panics when the other is
//! gone.

use crate::error::{Error, Result};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// The sending half of a job's answer.
pub(crate) enum Reply<T> {
    /// A thread waits in [`Waiting::wait`].
    Blocking(mpsc::SyncSender<T>),
    /// A future waits in [`Waiting::wait_async`].
    Async(oneshot::Sender<T>),
}

/// The receiving half.
pub(crate) enum Waiting<T> {
    Blocking(mpsc::Receiver<T>),
    Async(oneshot::Receiver<T>),
}

impl<T> Reply<T> {
    /// A reply for a caller that blocks its thread.
    pub(crate) fn blocking() -> (Self, Waiting<T>) {
        let (tx, rx) = mpsc::sync_channel(1);
        (Reply::Blocking(tx), Waiting::Blocking(rx))
    }

    /// A reply for a future.
    pub(crate) fn future() -> (Self, Waiting<T>) {
        let (tx, rx) = oneshot::channel();
        (Reply::Async(tx), Waiting::Async(rx))
    }

    /// Answers; a caller that stopped waiting is no error.
    pub(crate) fn send(self, value: T) {
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(value);
            }
            Reply::Async(tx) => {
                let _ = tx.send(value);
            }
        }
    }
}

impl<T> Waiting<T> {
    /// Blocks until the answer comes. A job dropped unanswered (the core stopped) is
    /// [`Error::Shutdown`].
    pub(crate) fn wait(self) -> Result<T> {
        match self {
            Waiting::Blocking(rx) => rx.recv().map_err(|_| Error::Shutdown),
            // Never made: blocking callers always make a blocking reply.
            Waiting::Async(_) => Err(Error::storage("wait", "an async reply waited on a thread")),
        }
    }

    /// Waits for the answer without blocking a thread.
    pub(crate) async fn wait_async(self) -> Result<T> {
        match self {
            // Never made: async callers always make a future reply.
            Waiting::Blocking(_) => Err(Error::storage("wait", "a blocking reply awaited")),
            Waiting::Async(rx) => rx.await.map_err(|_| Error::Shutdown),
        }
    }
}
