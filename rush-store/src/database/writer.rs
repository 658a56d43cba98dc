//! The one group-commit writer of a database: a thread the database owns. It takes every
//! write waiting at that moment (any number of stores, tables, checkpoints, maintenance
//! pages), commits them as one atomic batch, makes them durable with one flush, then
//! tells readers and releases every caller. The part of the flush an engine hands back
//! (sled: all of it) runs on the confirmer's thread while this one takes the next jobs:
//! a few clients' durable writes wait uncommitted until the running step's flush is done,
//! many are committed beside it (see `gather`). No user code runs here: jobs are batches
//! of sealed bytes, and a panic inside the engine fails that group's callers, not the
//! thread.
//!
//! The writer is a role, held under one lock: normally by its thread, which takes jobs
//! from the queue. A synchronous caller outside any tokio runtime that finds the role free
//! and the queue empty takes it for its own write instead of queueing it ([`Shared::commit_here`]):
//! the same group commit, the same durability discipline, without the two thread hops a
//! lone blocking caller would otherwise pay on every write. Async callers always queue.

use super::confirmer::{Answer, Confirm, Confirmer, answer_all, answer_all_ok};
use super::reply::Reply;
use super::visibility::Visibility;
use crate::backend::{Backend, Confirmation, GuardFailed, WriteBatch};
use crate::error::{Error, Result};
use crate::store::Durability;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

mod gather;
mod group;
mod queue;

use gather::{Gather, Hold, InlineSteps, MAX_GATHER};
use group::Pending;
pub(crate) use queue::{Inbox, Jobs};

/// The outcome of one write: committed, or a guard of its own failed (nothing written).
pub(crate) type CommitOutcome = Result<Result<(), GuardFailed>>;

/// At most this many jobs are merged into one batch.
const MAX_GROUP: usize = 4096;

/// The shortest wait before the writer looks again whether a flush step it handed over
/// failed (see `Writer::flush_deadline`).
const STEP_CHECK: Duration = Duration::from_millis(10);

/// What the writer is asked to do.
pub(crate) enum Job {
    /// Commit `batch` in the next group; durable before `done` when `durability` says so.
    Commit {
        batch: WriteBatch,
        durability: Durability,
        done: Reply<CommitOutcome>,
    },
    /// Make everything committed so far durable.
    Flush { done: Reply<Result<()>> },
    /// Finish every job sent before this one, flush, and stop.
    Stop { done: Reply<Result<()>> },
    /// A caller committed in the thread's place and left writes to flush: look at the
    /// flush deadline again.
    Wake,
    /// Finish every job sent before this one, flush, wait for the flush's step, and
    /// copy the engine's files to `dest` while nothing else is written.
    Backup {
        dest: std::path::PathBuf,
        done: Reply<Result<u64>>,
    },
}

impl Job {
    /// Whether the job counts as queued work that a caller committing in the thread's
    /// place must not overtake (a wake-up is no work).
    pub(crate) fn is_work(&self) -> bool {
        !matches!(self, Job::Wake)
    }
}

/// Counters of the writer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) groups: AtomicU64,
    pub(crate) members: AtomicU64,
}

/// The writer role and the count of queued jobs, shared by the thread and the callers
/// that may commit in its place.
pub(crate) struct Shared {
    role: Mutex<Writer>,
    /// Jobs sent to the queue and not finished yet (a caller may only commit in the
    /// thread's place while this is 0: its write must not overtake one sent before it).
    queued: AtomicUsize,
    /// Jobs the thread took from the queue and holds uncommitted (see `gather`), read by
    /// the confirmer when a step is done.
    held: Arc<AtomicUsize>,
    /// The longest the thread holds writes for the clients a step answered.
    max_gather: Duration,
}

/// Starts the writer thread; it ends after a [`Job::Stop`] or when every sender is gone.
/// The confirmer holds only a weak handle of the sender (to wake the thread when a step
/// it waits for is done), so dropping the returned one still ends the thread.
pub(crate) fn start(
    engine: Arc<dyn Backend>,
    visibility: Arc<Visibility>,
    counters: Arc<Counters>,
    flush_interval: Duration,
    reader_flush_delay: Duration,
) -> std::io::Result<Started> {
    start_gathering(
        engine,
        visibility,
        counters,
        (flush_interval, reader_flush_delay),
        MAX_GATHER,
    )
}

/// What [`start`] returns: the shared role, the queue's sender, the thread.
pub(crate) type Started = (Arc<Shared>, Arc<Jobs>, std::thread::JoinHandle<()>);

/// [`start`], holding writes for at most `max_gather` for the clients a step answered.
fn start_gathering(
    engine: Arc<dyn Backend>,
    visibility: Arc<Visibility>,
    counters: Arc<Counters>,
    (flush_interval, reader_flush_delay): (Duration, Duration),
    max_gather: Duration,
) -> std::io::Result<Started> {
    let (jobs, inbox) = queue::channel();
    let jobs = Arc::new(jobs);
    let wake_handle = Arc::downgrade(&jobs);
    let held = Arc::new(AtomicUsize::new(0));
    let confirmer = Confirmer::start(
        Arc::clone(&visibility),
        Box::new(move || {
            if let Some(jobs) = wake_handle.upgrade() {
                let _ = jobs.send(Job::Wake);
            }
        }),
        Arc::clone(&held),
    )?;
    let shared = Arc::new(Shared {
        role: Mutex::new(Writer {
            engine: Some(engine),
            confirmer,
            visibility,
            counters,
            flush_interval,
            reader_flush_delay,
            unflushed_since: None,
            inline: InlineSteps::default(),
        }),
        queued: AtomicUsize::new(0),
        held,
        max_gather,
    });
    let thread_shared = Arc::clone(&shared);
    let handle = std::thread::Builder::new()
        .name("rush-writer".into())
        .spawn(move || {
            thread_shared.run(&inbox);
            // Stopped: release the engine, so the database can close it.
            thread_shared.role().engine = None;
        })?;
    Ok((shared, jobs, handle))
}

struct Writer {
    /// `None` once the writer stopped.
    engine: Option<Arc<dyn Backend>>,
    /// Runs the step each flush hands back (sled: the flush itself) while the next
    /// groups commit.
    confirmer: Confirmer,
    visibility: Arc<Visibility>,
    counters: Arc<Counters>,
    flush_interval: Duration,
    /// The flush interval while a reader waits for unflushed writes.
    reader_flush_delay: Duration,
    /// Set while commits acknowledged without a flush (Periodic) wait for one.
    unflushed_since: Option<Instant>,
    /// Durable commits the engine finished by itself, answered from this thread.
    inline: InlineSteps,
}

impl Shared {
    /// Counts a job about to be queued; call before sending it.
    pub(crate) fn queueing(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes back the count of a job that could not be queued.
    pub(crate) fn not_queued(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
    }

    fn role(&self) -> MutexGuard<'_, Writer> {
        self.role.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Commits `batch` on the calling thread if the writer role is free and no queued job
    /// is waiting (a job queued earlier must be committed first); otherwise hands the
    /// batch back, for the queue. The returned flag says the thread must be woken to
    /// flush what this write left unflushed.
    pub(crate) fn commit_here(
        &self,
        batch: WriteBatch,
        durability: Durability,
    ) -> std::result::Result<(CommitOutcome, bool), WriteBatch> {
        let mut writer = match self.role.try_lock() {
            Ok(writer) => writer,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(batch),
        };
        if self.queued.load(Ordering::SeqCst) != 0 {
            return Err(batch);
        }
        let was_unflushed = writer.unflushed_since.is_some();
        let (done, waiting) = Reply::blocking();
        writer.commit_group(&mut vec![(batch, durability, done)]);
        let wake = !was_unflushed && writer.unflushed_since.is_some();
        drop(writer);
        // Answered inside commit_group; a missing answer is a stopped writer.
        Ok((waiting.wait().and_then(|outcome| outcome), wake))
    }

    fn run(&self, inbox: &Inbox) {
        // Jobs taken from the queue and not run yet (see `gather`).
        let mut held: Vec<Job> = Vec::new();
        let mut gather = Gather::new(self.max_gather);
        loop {
            let hold = if held.is_empty() {
                Hold::Commit
            } else {
                let status = {
                    let writer = self.role();
                    writer.inline.merged(writer.confirmer.status())
                };
                gather.decide(&held, &status, Instant::now())
            };
            let hold_until = match hold {
                Hold::Commit if !held.is_empty() => {
                    self.held.store(0, Ordering::SeqCst);
                    let mut writer = self.role();
                    if writer.run_jobs(std::mem::take(&mut held), &self.queued) {
                        return;
                    }
                    writer.flush_if_due();
                    continue;
                }
                Hold::Commit => None,
                Hold::Until(until) => Some(until),
                Hold::UntilStepDone => {
                    if !self.role().confirmer.wake_when_done() {
                        // Done meanwhile: decide again.
                        continue;
                    }
                    None
                }
            };
            let deadline = match (self.role().flush_deadline(), hold_until) {
                (Some(flush), Some(hold)) => Some(flush.min(hold)),
                (flush, hold) => flush.or(hold),
            };
            let first = match deadline {
                None => match inbox.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                },
                Some(due) => {
                    match inbox.recv_timeout(due.saturating_duration_since(Instant::now())) {
                        Ok(job) => job,
                        Err(RecvTimeoutError::Timeout) => {
                            self.role().flush_if_due();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            // A wake-up is no work: it only makes the thread decide again.
            held.extend(std::iter::once(first).filter(Job::is_work));
            while held.len() < MAX_GROUP {
                match inbox.try_recv() {
                    Ok(job) if job.is_work() => held.push(job),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            self.held.store(held.len(), Ordering::SeqCst);
        }
        // Every handle is gone: make what was acknowledged durable before the thread ends.
        let mut writer = self.role();
        if !held.is_empty() {
            let _ = writer.run_jobs(held, &self.queued);
        }
        let _ = writer.flush_then(Vec::new());
        writer.confirmer.barrier();
    }
}

impl Writer {
    /// Runs the jobs the thread took from the queue, in order, and takes them off the
    /// queued count. True when one of them was a stop.
    fn run_jobs(&mut self, jobs: Vec<Job>, queued: &AtomicUsize) -> bool {
        let mut group: Vec<Pending> = Vec::new();
        let mut finished = 0;
        let mut stop = false;
        for job in jobs {
            if job.is_work() {
                finished += 1;
            }
            match job {
                Job::Commit {
                    batch,
                    durability,
                    done,
                } => group.push((batch, durability, done)),
                Job::Flush { done } => {
                    self.commit_group(&mut group);
                    let _ = self.flush_then(vec![Answer::Flush(done)]);
                }
                Job::Stop { done } => {
                    self.commit_group(&mut group);
                    self.closing();
                    let _ = self.flush_then(vec![Answer::Flush(done)]);
                    stop = true;
                    break;
                }
                Job::Wake => {}
                Job::Backup { dest, done } => {
                    self.commit_group(&mut group);
                    done.send(self.backup(&dest));
                }
            }
        }
        self.commit_group(&mut group);
        queued.fetch_sub(finished, Ordering::SeqCst);
        stop
    }

    /// When writes acknowledged without a flush must be flushed: a flush interval after the
    /// oldest of them, or the reader delay when a reader waits for them. `None`: nothing to
    /// flush, or a deadline past the clock's range (an interval of `Duration::MAX`).
    /// Writes whose flush step failed on the confirmer count as unflushed from now; while
    /// a step runs, the writer looks again after [`STEP_CHECK`] or the interval.
    fn flush_deadline(&mut self) -> Option<Instant> {
        if self.confirmer.take_failure() && self.unflushed_since.is_none() {
            self.unflushed_since = Some(Instant::now());
        }
        let Some(since) = self.unflushed_since else {
            return if self.confirmer.busy() {
                Instant::now().checked_add(self.flush_interval.max(STEP_CHECK))
            } else {
                None
            };
        };
        let wait = if self.visibility.flush_wanted() {
            self.flush_interval.min(self.reader_flush_delay)
        } else {
            self.flush_interval
        };
        since.checked_add(wait)
    }

    /// Flushes when writes acknowledged without a flush are due (see `flush_deadline`).
    fn flush_if_due(&mut self) {
        if self
            .flush_deadline()
            .is_some_and(|due| Instant::now() >= due)
        {
            // A failure keeps them pending for the next try.
            let _ = self.flush_then(Vec::new());
        }
    }

    /// Flushes the engine (caught if it panics); `answers` get the outcome once the
    /// flush's step is done, and readers see what it covers from then on. Returns the
    /// outcome of the part that ran here: a step that fails later answers `answers` with
    /// its error, and the writer flushes again (see `flush_deadline`).
    fn flush_then(&mut self, answers: Vec<Answer>) -> Result<()> {
        let Some(engine) = &self.engine else {
            answer_all(answers, &Error::Shutdown);
            return Err(Error::Shutdown);
        };
        let flushed = catch_unwind(AssertUnwindSafe(|| engine.flush_deferred()))
            .unwrap_or_else(|panic| Err(Error::panicked("flush", &*panic)));
        match flushed {
            Ok(step) => {
                self.unflushed_since = None;
                self.confirm(step, answers);
                Ok(())
            }
            Err(error) => {
                answer_all(answers, &error);
                Err(error)
            }
        }
    }

    /// Flushes, waits until the flush's step is done (the commit mark covers every
    /// commit), and copies the engine's files while the writer is held: no commit can
    /// land during the copy, so the copy is one consistent image.
    fn backup(&mut self, dest: &std::path::Path) -> Result<u64> {
        let (done, flushed) = Reply::blocking();
        // An engine failure answers `done` too.
        let _ = self.flush_then(vec![Answer::Flush(done)]);
        flushed.wait().and_then(|outcome| outcome)?;
        self.confirmer.barrier();
        let Some(engine) = &self.engine else {
            return Err(Error::Shutdown);
        };
        catch_unwind(AssertUnwindSafe(|| engine.copy_files_to(dest)))
            .unwrap_or_else(|panic| Err(Error::panicked("copy the engine's files", &*panic)))
    }

    /// Lets the engine prepare for the next open before the last flush
    /// ([`Backend::closing`]); a failure or panic is logged: the flush that follows makes
    /// everything acknowledged durable all the same.
    fn closing(&self) {
        let Some(engine) = &self.engine else {
            return;
        };
        let closed = catch_unwind(AssertUnwindSafe(|| engine.closing()))
            .unwrap_or_else(|panic| Err(Error::panicked("prepare the engine to close", &*panic)));
        if let Err(error) = closed {
            tracing::warn!(%error, "the engine could not prepare for its next open");
        }
    }

    /// Answers `answers` and lets readers see what the engine made durable, after `step`
    /// (on the confirmer's thread) when there is one, or when an earlier step is still
    /// running (so that answers and readers follow the order of flushes).
    fn confirm(&mut self, step: Option<Confirmation>, answers: Vec<Answer>) {
        if step.is_none() && !self.confirmer.busy() {
            self.visibility.flushed();
            answer_all_ok(answers);
            return;
        }
        let generation = self.visibility.seal();
        self.confirmer.submit(Confirm {
            step,
            generation,
            answers,
        });
    }
}

#[cfg(test)]
mod tests;
