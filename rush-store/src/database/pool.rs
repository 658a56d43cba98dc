//! The database's own threads for blocking reads (recoveries, subscription pages,
//! queries, snapshot encoding, health probes), so that async callers never run an engine
//! call or a large encode on a tokio worker. A job that panics fails its caller with
//! [`Error::Panicked`]; the thread goes on.

use super::reply::Reply;
use crate::error::{Error, Result};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

type Task = Box<dyn FnOnce() + Send>;

/// A fixed set of threads named `rush-reader-N`, fed from one queue.
pub(crate) struct Pool {
    tasks: Mutex<Option<mpsc::Sender<Task>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts `threads` threads (at least one).
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.clamp(1, 64) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("rush-reader-{n}"))
                .spawn(move || {
                    loop {
                        let task = {
                            let queue = rx.lock().unwrap_or_else(PoisonError::into_inner);
                            queue.recv()
                        };
                        match task {
                            Ok(task) => task(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            tasks: Mutex::new(Some(tx)),
        })
    }

    /// Runs `work` on a pool thread and waits for it without blocking the caller's thread.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, waiting) = Reply::future();
        let task: Task = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(work))
                .unwrap_or_else(|panic| Err(Error::panicked(operation, &*panic)));
            reply.send(outcome);
        });
        let sent = {
            let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            match tasks.as_ref() {
                Some(tx) => tx.send(task).is_ok(),
                None => false,
            }
        };
        if !sent {
            return Err(Error::Shutdown);
        }
        waiting.wait_async().await?
    }

    /// Lets the threads end once the queued tasks are done.
    pub(crate) fn stop(&self) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}
