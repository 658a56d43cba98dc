//! The writer thread with an engine whose flush step waits for the test: what it holds
//! while a step runs, and how many engine commits the clients of one step make.

use super::*;
use crate::backend::{MemoryManager, WriteOp};
use crate::database::reply::Waiting;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;

/// A memory engine that counts commits, and whose flush step says it started and then
/// waits until the test releases it.
#[derive(Debug)]
struct Gated {
    inner: MemoryManager,
    commits: AtomicUsize,
    started: Arc<Mutex<mpsc::Sender<()>>>,
    release: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl Backend for Gated {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan(start, end, limit, reverse)
    }

    fn commit(&self, batch: &WriteBatch) -> Result<std::result::Result<(), GuardFailed>> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(batch)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn flush_deferred(&self) -> Result<Option<Confirmation>> {
        let (started, release) = (Arc::clone(&self.started), Arc::clone(&self.release));
        Ok(Some(Box::new(move || {
            let _ = started.lock().map(|started| started.send(()));
            let release = release.lock().map_err(|_| Error::Shutdown)?;
            release.recv().map_err(|_| Error::Shutdown)?;
            Ok(None)
        })))
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(0)
    }
}

/// Sends a durable write of `key` to the writer.
fn write(shared: &Shared, jobs: &Jobs, key: &str) -> Waiting<CommitOutcome> {
    let (done, waiting) = Reply::blocking();
    shared.queueing();
    let batch = WriteBatch {
        ops: vec![WriteOp::Put {
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
        }],
        ..WriteBatch::default()
    };
    let _ = jobs.send(Job::Commit {
        batch,
        durability: Durability::Immediate,
        done,
    });
    waiting
}

fn answered(waiting: Waiting<CommitOutcome>) -> bool {
    matches!(waiting.wait(), Ok(Ok(Ok(()))))
}

#[test]
fn writes_wait_for_the_running_step_and_the_clients_it_answered_share_one_commit() -> Result<()> {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let engine = Arc::new(Gated {
        inner: MemoryManager::default(),
        commits: AtomicUsize::new(0),
        started: Arc::new(Mutex::new(started_tx)),
        release: Arc::new(Mutex::new(release_rx)),
    });
    let commits = || engine.commits.load(Ordering::SeqCst);
    // A gathering window far longer than the test, so that it does not depend on timing.
    let (shared, jobs, thread) = start_gathering(
        Arc::clone(&engine) as Arc<dyn Backend>,
        Arc::default(),
        Arc::default(),
        (Duration::from_secs(60), Duration::from_secs(60)),
        Duration::from_secs(60),
    )
    .map_err(|e| Error::from_io("t", &e))?;
    // Long enough for the writer to take what is sent; the first step lasts about this
    // long, and so does the gathering after it (its window is the step's time).
    let never = Duration::from_millis(300);

    // Client a's write is committed and its flush runs.
    let a = write(&shared, &jobs, "a");
    started.recv().map_err(|_| Error::Shutdown)?;
    assert_eq!(commits(), 1);
    // b, c and d write while it runs: held, not committed.
    let others: Vec<_> = ["b", "c", "d"]
        .iter()
        .map(|key| write(&shared, &jobs, key))
        .collect();
    assert!(started.recv_timeout(never).is_err());
    assert_eq!(commits(), 1, "held while the step runs");
    release.send(()).map_err(|_| Error::Shutdown)?;
    assert!(answered(a));
    // The step answered a and three waited: the writer gathers four (for as long as the
    // step took, far longer than the next lines). a writes again.
    assert_eq!(commits(), 1, "gathering the client just answered");
    let a = write(&shared, &jobs, "a2");
    started.recv().map_err(|_| Error::Shutdown)?;
    assert_eq!(commits(), 2, "four clients, one engine commit");
    release.send(()).map_err(|_| Error::Shutdown)?;
    assert!(answered(a));
    assert!(others.into_iter().all(answered));

    // A flush job is never held: it commits what is held and flushes at once.
    let (done, flushed) = Reply::blocking();
    shared.queueing();
    let _ = jobs.send(Job::Flush { done });
    started.recv().map_err(|_| Error::Shutdown)?;
    release.send(()).map_err(|_| Error::Shutdown)?;
    assert!(matches!(flushed.wait(), Ok(Ok(()))));

    // Every sender gone: the thread flushes once more and ends.
    drop(jobs);
    release.send(()).map_err(|_| Error::Shutdown)?;
    thread.join().map_err(|_| Error::Shutdown)?;
    Ok(())
}
