//! Group commit: one writer thread takes every append waiting at that moment (from any
//! number of actors), commits them as one atomic batch and makes them durable with one
//! flush, then releases each actor's reply. A flush never blocks a tokio worker, and the
//! cost of a flush is shared by all the actors that were waiting for it.

use rush_store::{Backend, Durability, GuardFailed, WriteBatch};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use tokio::sync::oneshot;
use tracing::{debug_span, warn};

/// The outcome of one member's append: committed, or a guard of its own failed.
pub(crate) type CommitOutcome = rush_store::Result<Result<(), GuardFailed>>;

/// At most this many jobs are merged into one batch.
const MAX_GROUP: usize = 4096;

enum Job {
    Commit {
        batch: WriteBatch,
        done: oneshot::Sender<CommitOutcome>,
    },
    Run(Box<dyn FnOnce() + Send>),
}

/// Counters of the writer.
#[derive(Debug, Default)]
pub struct GroupCommitStats {
    /// Batches committed (one flush each in Immediate durability).
    pub groups: AtomicU64,
    /// Appends committed in them.
    pub members: AtomicU64,
}

/// A handle on the writer thread. The thread ends when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    pub(crate) stats: Arc<GroupCommitStats>,
}

impl GroupCommit {
    /// Starts the writer thread on `backend`.
    pub(crate) fn start(
        backend: Arc<dyn Backend>,
        durability: Durability,
    ) -> std::io::Result<Self> {
        let (jobs, inbox) = mpsc::channel();
        let stats = Arc::new(GroupCommitStats::default());
        let thread_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("rush-group-commit".into())
            .spawn(move || run(&inbox, backend.as_ref(), durability, &thread_stats))?;
        Ok(Self { jobs, stats })
    }

    /// Commits `batch` in the next group; resolves once it is durable (or failed).
    pub(crate) async fn commit(&self, batch: WriteBatch) -> CommitOutcome {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job::Commit { batch, done })
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }

    /// Runs `work` on the writer thread, in order with the commits around it (for rare
    /// multi-batch writes such as deleting history).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> rush_store::Result<T> {
        let (done, result) = oneshot::channel();
        let job = Job::Run(Box::new(move || {
            let _ = done.send(work());
        }));
        self.jobs.send(job).map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())
    }
}

fn stopped() -> rush_store::Error {
    rush_store::Error::Storage {
        operation: "group commit",
        message: "writer thread stopped".into(),
    }
}

/// rush_store::Error is not Clone (it may carry sources): each member gets a copy that
/// keeps the variant a caller acts on.
fn copy_error(error: &rush_store::Error) -> rush_store::Error {
    rush_store::Error::Storage {
        operation: "group commit",
        message: error.to_string(),
    }
}

fn run(
    inbox: &mpsc::Receiver<Job>,
    backend: &dyn Backend,
    durability: Durability,
    stats: &GroupCommitStats,
) {
    let mut group: Vec<(WriteBatch, oneshot::Sender<CommitOutcome>)> = Vec::new();
    while let Ok(first) = inbox.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match inbox.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        for job in jobs {
            match job {
                Job::Commit { batch, done } => group.push((batch, done)),
                Job::Run(work) => {
                    commit_group(&mut group, backend, durability, stats);
                    work();
                }
            }
        }
        commit_group(&mut group, backend, durability, stats);
    }
}

/// Commits all members as one batch. A member whose guard fails is answered with its own
/// failure and the rest are committed without it.
fn commit_group(
    group: &mut Vec<(WriteBatch, oneshot::Sender<CommitOutcome>)>,
    backend: &dyn Backend,
    durability: Durability,
    stats: &GroupCommitStats,
) {
    if group.is_empty() {
        return;
    }
    let _span = debug_span!("group_commit", members = group.len()).entered();
    // One merged batch, built by moving each member's writes in; each member's guards and
    // ops are a range of it, cut out only if one of its guards fails.
    let mut merged = WriteBatch::default();
    let mut members = Vec::with_capacity(group.len());
    for (batch, done) in group.drain(..) {
        let (guards, ops, appends) = (merged.guards.len(), merged.ops.len(), merged.appends.len());
        merged.extend(batch);
        members.push(Member {
            guards: guards..merged.guards.len(),
            ops: ops..merged.ops.len(),
            appends: appends..merged.appends.len(),
            done,
        });
    }
    loop {
        match backend.commit(&merged) {
            Ok(Ok(())) => break,
            Ok(Err(failed)) => {
                let Some(owner) = members
                    .iter()
                    .position(|m| m.guards.contains(&failed.index))
                else {
                    let error = rush_store::Error::Storage {
                        operation: "group commit",
                        message: format!("guard {} failed but belongs to no member", failed.index),
                    };
                    fail_all(members, &error);
                    return;
                };
                let member = members.remove(owner);
                merged.guards.drain(member.guards.clone());
                merged.ops.drain(member.ops.clone());
                merged.appends.drain(member.appends.clone());
                for later in members.iter_mut().skip(owner) {
                    later.guards = shift(&later.guards, member.guards.len());
                    later.ops = shift(&later.ops, member.ops.len());
                    later.appends = shift(&later.appends, member.appends.len());
                }
                let own = GuardFailed {
                    index: failed.index - member.guards.start,
                    actual: failed.actual,
                };
                let _ = member.done.send(Ok(Err(own)));
                if members.is_empty() {
                    return;
                }
            }
            Err(error) => {
                warn!(%error, "group commit failed");
                fail_all(members, &error);
                return;
            }
        }
    }
    if durability == Durability::Immediate
        && let Err(error) = backend.flush()
    {
        warn!(%error, "group flush failed");
        fail_all(members, &error);
        return;
    }
    stats.groups.fetch_add(1, Ordering::Relaxed);
    stats
        .members
        .fetch_add(members.len() as u64, Ordering::Relaxed);
    for member in members {
        let _ = member.done.send(Ok(Ok(())));
    }
}

/// One append in a group: its ranges in the merged batch and where its outcome goes.
struct Member {
    guards: Range<usize>,
    ops: Range<usize>,
    appends: Range<usize>,
    done: oneshot::Sender<CommitOutcome>,
}

fn shift(range: &Range<usize>, by: usize) -> Range<usize> {
    range.start - by..range.end - by
}

fn fail_all(members: Vec<Member>, error: &rush_store::Error) {
    for member in members {
        let _ = member.done.send(Err(copy_error(error)));
    }
}

#[cfg(test)]
mod tests;
