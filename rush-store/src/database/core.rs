//! The shared core of a database: the engine, the writer thread, the reader threads and
//! what readers may see. Views reach the engine only through it.

use super::pool::Pool;
use super::reply::Reply;
use super::visibility::Visibility;
use super::writer::{self, CommitOutcome, Counters, Job, Jobs, Shared};
use super::{DatabaseConfig, WriterStats};
use crate::backend::{Backend, WriteBatch};
use crate::error::{Error, Result};
use crate::store::Durability;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// One engine, its writer and its readers.
pub(crate) struct Core {
    engine: RwLock<Option<Arc<dyn Backend>>>,
    jobs: RwLock<Option<Arc<Jobs>>>,
    /// The writer role (which a blocking caller may take for its own write).
    writer_role: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    pool: Pool,
    visibility: Arc<Visibility>,
    counters: Arc<Counters>,
    shut_down: AtomicBool,
    /// Serialises concurrent shutdowns: the second waits for the first.
    shutting_down: tokio::sync::Mutex<()>,
    pub(crate) identity: usize,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("shut_down", &self.is_shut_down())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Starts the writer and reader threads on `engine`.
    pub(crate) fn start(engine: Arc<dyn Backend>, config: &DatabaseConfig) -> Result<Self> {
        let visibility = Arc::new(Visibility::default());
        let counters = Arc::new(Counters::default());
        let spawn_error = |e: std::io::Error| Error::from_io("start database threads", &e);
        let (writer_role, jobs, writer) = writer::start(
            Arc::clone(&engine),
            Arc::clone(&visibility),
            Arc::clone(&counters),
            config.flush_interval,
            config.reader_flush_delay,
        )
        .map_err(spawn_error)?;
        let pool = Pool::start(config.read_threads).map_err(spawn_error)?;
        Ok(Self {
            identity: engine.identity(),
            engine: RwLock::new(Some(engine)),
            jobs: RwLock::new(Some(jobs)),
            writer_role,
            writer: Mutex::new(Some(writer)),
            pool,
            visibility,
            counters,
            shut_down: AtomicBool::new(false),
            shutting_down: tokio::sync::Mutex::new(()),
        })
    }

    /// The engine, for reads.
    pub(crate) fn engine(&self) -> Result<Arc<dyn Backend>> {
        self.engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::Shutdown)
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::SeqCst)
    }

    fn send(&self, job: Job) -> Result<()> {
        let jobs = self.jobs.read().unwrap_or_else(PoisonError::into_inner);
        match jobs.as_ref() {
            Some(jobs) if !self.is_shut_down() => {
                let counted = job.is_work();
                if counted {
                    self.writer_role.queueing();
                }
                jobs.send(job).map_err(|_| {
                    if counted {
                        self.writer_role.not_queued();
                    }
                    Error::Shutdown
                })
            }
            _ => Err(Error::Shutdown),
        }
    }

    /// Commits `batch` through the writer and blocks until it is acknowledged (durable
    /// under `Immediate`). Outside a tokio runtime, a caller that finds the writer idle
    /// commits in its place (see [`writer`]); on a runtime's thread it always queues, so
    /// no engine call runs on a tokio worker.
    pub(crate) fn write(&self, batch: WriteBatch, durability: Durability) -> CommitOutcome {
        if self.is_shut_down() {
            return Err(Error::Shutdown);
        }
        let batch = if tokio::runtime::Handle::try_current().is_err() {
            match self.writer_role.commit_here(batch, durability) {
                Ok((outcome, wake)) => {
                    if wake {
                        // The thread flushes within the interval; if it is gone, the
                        // stop's own flush covered this write.
                        let _ = self.send(Job::Wake);
                    }
                    return outcome;
                }
                Err(batch) => batch,
            }
        } else {
            batch
        };
        let (done, waiting) = Reply::blocking();
        self.send(Job::Commit {
            batch,
            durability,
            done,
        })?;
        waiting.wait()?
    }

    /// [`Core::write`] for async callers: the future waits, no thread blocks.
    pub(crate) async fn write_async(
        &self,
        batch: WriteBatch,
        durability: Durability,
    ) -> CommitOutcome {
        let (done, waiting) = Reply::future();
        self.send(Job::Commit {
            batch,
            durability,
            done,
        })?;
        waiting.wait_async().await?
    }

    /// Makes everything committed so far durable.
    pub(crate) async fn flush_async(&self) -> Result<()> {
        let (done, waiting) = Reply::future();
        self.send(Job::Flush { done })?;
        waiting.wait_async().await?
    }

    /// Copies the engine's files to `dest` between two group commits (see `Job::Backup`).
    pub(crate) async fn copy_files_async(&self, dest: std::path::PathBuf) -> Result<u64> {
        let (done, waiting) = Reply::future();
        self.send(Job::Backup { dest, done })?;
        waiting.wait_async().await?
    }

    /// [`Core::flush_async`] for a thread of its own.
    pub(crate) fn flush_blocking(&self) -> Result<()> {
        refuse_on_runtime("flush_blocking", "flush().await")?;
        let (done, waiting) = Reply::blocking();
        self.send(Job::Flush { done })?;
        waiting.wait()?
    }

    /// [`Core::shutdown`] for a thread of its own.
    pub(crate) fn shutdown_blocking(&self) -> Result<()> {
        refuse_on_runtime("shutdown_blocking", "shutdown().await")?;
        // Not on a runtime, so this lock may block (behind a concurrent shutdown).
        let _one_at_a_time = self.shutting_down.blocking_lock();
        let (done, waiting) = Reply::blocking();
        let stopped = match self.queue_stop(done) {
            None => return Ok(()),
            Some(Ok(())) => waiting.wait().and_then(|flushed| flushed),
            Some(Err(error)) => Err(error),
        };
        let closed = self.release()();
        self.pool.stop();
        stopped.and(closed)
    }

    /// Runs `work` with the engine on one of the database's reader threads.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&dyn Backend) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let engine = self.engine()?;
        self.pool
            .run(operation, move || work(engine.as_ref()))
            .await
    }

    /// Runs `work` (no engine needed: an encode, say) on a reader thread.
    pub(crate) async fn compute<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.is_shut_down() {
            return Err(Error::Shutdown);
        }
        self.pool.run(operation, work).await
    }

    /// The highest offset of `log` that is durable while later entries are not.
    pub(crate) fn durable_end(&self, log: &[u8]) -> Option<u64> {
        self.visibility.durable_end(log)
    }

    /// Called by a read that met log entries not flushed yet: asks the writer to flush them
    /// within the reader delay (once per flush; later askers find the request made).
    pub(crate) fn reader_waits_for_flush(&self) {
        if self.visibility.want_flush() {
            // A stopped writer has flushed (or will at its close): nothing to ask.
            let _ = self.send(Job::Wake);
        }
    }

    /// Changes whenever new collection-log entries became durable.
    pub(crate) fn log_appended(&self) -> watch::Receiver<u64> {
        self.visibility.subscribe()
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            groups: self.counters.groups.load(Ordering::Relaxed),
            writes: self.counters.members.load(Ordering::Relaxed),
        }
    }

    /// See [`Database::shutdown`](super::Database::shutdown).
    pub(crate) async fn shutdown(&self) -> Result<()> {
        let _one_at_a_time = self.shutting_down.lock().await;
        let (done, waiting) = Reply::future();
        let stopped = match self.queue_stop(done) {
            None => return Ok(()),
            Some(Ok(())) => waiting.wait_async().await.and_then(|flushed| flushed),
            Some(Err(error)) => Err(error),
        };
        let close = self.release();
        // Joining the writer and closing the engine block: do both on a reader thread.
        let closed = self.pool.run("shutdown", close).await;
        self.pool.stop();
        stopped.and(closed)
    }

    /// Stops accepting work and queues the writer's stop behind every job accepted so far
    /// (`None`: the database was shut down already).
    fn queue_stop(&self, done: Reply<Result<()>>) -> Option<Result<()>> {
        let jobs = self
            .jobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        // Jobs sent before this point are ahead of the stop in the writer's queue.
        self.shut_down.store(true, Ordering::SeqCst);
        Some(jobs.send(Job::Stop { done }).map_err(|_| Error::Shutdown))
    }

    /// Takes the writer thread and the engine out of the core (and the core out of the
    /// registry): the returned closure joins the writer, then drops the engine, which
    /// closes it once no read holds it any more.
    fn release(&self) -> impl FnOnce() -> Result<()> + Send + 'static {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let engine = self
            .engine
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        super::registry::forget(self, self.identity);
        move || {
            if let Some(writer) = writer {
                writer
                    .join()
                    .map_err(|panic| Error::panicked("writer thread", &*panic))?;
            }
            drop(engine);
            Ok(())
        }
    }
}

impl Drop for Core {
    /// The last handle is gone without a shutdown: close the same way. The writer
    /// finishes its queue and flushes, then the engine is released. On a thread of its
    /// own this waits for that, so the folder can be opened again (by this process or
    /// another) as soon as the drop returns; on a tokio worker it does not wait, since
    /// blocking a worker is never allowed: async code calls `shutdown().await` instead.
    fn drop(&mut self) {
        self.jobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let close = self.release();
        if tokio::runtime::Handle::try_current().is_ok() {
            // Closing blocks (the final flush, the engine's own close): not on a worker.
            let spawned = std::thread::Builder::new()
                .name("rush-closer".into())
                .spawn(move || drop(close()));
            if let Err(error) = spawned {
                tracing::warn!(%error, "could not start a thread to close the database");
            }
        } else {
            let _ = close();
        }
        self.pool.stop();
    }
}

/// A blocking call inside a tokio runtime would block its worker (and `blocking_lock`
/// would panic there): refused with the async call to use instead.
fn refuse_on_runtime(call: &str, instead: &str) -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::InvalidArgument(format!(
            "{call} blocks its thread and was called inside a tokio runtime: use {instead}"
        )));
    }
    Ok(())
}
