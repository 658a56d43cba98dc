//! The caller's side of a running projection: its lag (a metric), waiting for it to catch
//! up, rebuilding it from zero, stopping it.

use super::supervisor::ControlMsg;
use crate::error::{Error, Result};
use ractor::ActorRef;
use rush_store::{EventFilter, EventQuery, PersistentActor};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{oneshot, watch};

/// How far a projection is behind its collection's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionLag {
    /// Log entries committed after the checkpoint (`head - checkpoint`).
    pub offsets_behind: u64,
    /// Age of the oldest event not yet covered by the checkpoint: zero when caught up,
    /// `None` when that event cannot be read (deleted).
    pub time_behind: Option<Duration>,
    /// The durable checkpoint: every entry up to it is handled.
    pub checkpoint: u64,
    /// The highest offset of the collection's log.
    pub head: u64,
}

/// What a projection's supervisor is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionState {
    /// The runner is loading its checkpoint (or clearing its read model for a rebuild).
    Starting,
    /// The runner is handling events or waiting for new ones.
    Running,
    /// The runner failed and restarts after a backoff.
    BackingOff {
        /// Why it failed.
        reason: String,
    },
    /// The runner failed too often within the restart window; nothing runs.
    GaveUp {
        /// The last failure.
        reason: String,
    },
    /// Stopped on request.
    Stopped,
}

/// What the runner and the supervisor publish to the handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) checkpoint: u64,
    pub(crate) state: ProjectionState,
    pub(crate) restarts: u64,
}

/// Reads the head of the projected log and the time of an entry, whatever the actor type.
pub(crate) trait LogProbe: Send + Sync {
    fn head(&self) -> rush_store::Result<u64>;
    fn timestamp_at(&self, offset: u64) -> rush_store::Result<Option<SystemTime>>;
}

impl<A: PersistentActor> LogProbe for EventQuery<A> {
    fn head(&self) -> rush_store::Result<u64> {
        self.highest_offset()
    }

    fn timestamp_at(&self, offset: u64) -> rush_store::Result<Option<SystemTime>> {
        let page = self.read(offset, &EventFilter::all(), 1)?;
        Ok(page.events.first().map(|event| event.timestamp))
    }
}

/// A running projection. Cloning it gives another handle on the same projection; dropping
/// every handle leaves it running.
#[derive(Clone)]
pub struct ProjectionHandle {
    pub(crate) name: String,
    pub(crate) control: ActorRef<ControlMsg>,
    pub(crate) progress: watch::Receiver<Progress>,
    pub(crate) probe: Arc<dyn LogProbe>,
    /// Whose reader threads read the log's head for the async methods.
    pub(crate) db: rush_store::Database,
}

impl std::fmt::Debug for ProjectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionHandle")
            .field("name", &self.name)
            .field("progress", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}

impl ProjectionHandle {
    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the projection is doing.
    pub fn state(&self) -> ProjectionState {
        self.progress.borrow().state.clone()
    }

    /// How many times the supervisor restarted the runner after a failure.
    pub fn restarts(&self) -> u64 {
        self.progress.borrow().restarts
    }

    /// How far behind the log the durable checkpoint is (reads the log's head on this
    /// thread: from async code, prefer [`ProjectionHandle::lag_async`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the log cannot be read: its head as
    /// [`EventQuery::highest_offset`], its oldest entry not yet checkpointed as
    /// [`EventQuery::read`].
    pub fn lag(&self) -> Result<ProjectionLag> {
        let checkpoint = self.progress.borrow().checkpoint;
        let head = self.probe.head()?;
        let offsets_behind = head.saturating_sub(checkpoint);
        let time_behind = if offsets_behind == 0 {
            Some(Duration::ZERO)
        } else {
            self.probe
                .timestamp_at(checkpoint.saturating_add(1))?
                .map(|oldest| SystemTime::now().duration_since(oldest).unwrap_or_default())
        };
        Ok(ProjectionLag {
            offsets_behind,
            time_behind,
            checkpoint,
            head,
        })
    }

    /// [`ProjectionHandle::lag`], reading the log on the database's threads.
    ///
    /// # Errors
    ///
    /// As [`ProjectionHandle::lag`].
    pub async fn lag_async(&self) -> Result<ProjectionLag> {
        let handle = self.clone();
        self.db
            .run_blocking("projection lag", move || Ok(handle.lag()))
            .await?
    }

    /// Waits until every event committed before this call is handled and checkpointed.
    ///
    /// # Errors
    ///
    /// [`Error::ProjectionBehind`] after `timeout`; [`Error::ProjectionUnavailable`] if the
    /// projection is stopped or its supervisor gave up; [`Error::Store`] when the log
    /// cannot be read, as [`ProjectionHandle::lag`].
    pub async fn wait_until_caught_up(&self, timeout: Duration) -> Result<ProjectionLag> {
        let probe = Arc::clone(&self.probe);
        let target = self
            .db
            .run_blocking("read log head", move || probe.head())
            .await?;
        let deadline = crate::config::deadline_after(timeout);
        let mut progress = self.progress.clone();
        loop {
            {
                let now = progress.borrow_and_update();
                if now.checkpoint >= target {
                    drop(now);
                    return self.lag_async().await;
                }
                if let Some(reason) = unavailable(&now.state) {
                    return Err(Error::ProjectionUnavailable {
                        projection: self.name.clone(),
                        reason,
                    });
                }
            }
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(Error::ProjectionUnavailable {
                        projection: self.name.clone(),
                        reason: "its supervisor is gone".into(),
                    });
                }
                Err(_) => {
                    return Err(Error::ProjectionBehind {
                        projection: self.name.clone(),
                        offsets_behind: target.saturating_sub(progress.borrow().checkpoint),
                        after: timeout,
                    });
                }
            }
        }
    }

    /// Rebuilds the read model from zero: stops the runner, marks the checkpoint
    /// "rebuilding", and starts a runner that clears the read model's tables, calls
    /// [`Projection::reset`](super::Projection::reset) and handles every event again.
    /// Returns once the new runner has started (not once it has caught up).
    ///
    /// # Errors
    ///
    /// [`Error::ProjectionUnavailable`] if the projection is stopped; [`Error::Store`] when
    /// the "rebuilding" mark cannot be written (the runner then goes on from its
    /// checkpoint).
    pub async fn rebuild(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(ControlMsg::Rebuild(reply))?;
        answer.await.map_err(|_| self.gone())?
    }

    /// Stops the runner (after the page it is handling) and its supervisor. Checkpointed
    /// progress is kept: a projection spawned again under the same name resumes from it.
    ///
    /// # Errors
    ///
    /// [`Error::ProjectionUnavailable`] if the supervisor stops before it confirms (a
    /// projection already stopped is `Ok`).
    pub async fn stop(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        if self.send(ControlMsg::Stop(reply)).is_err() {
            return Ok(()); // already stopped
        }
        answer.await.map_err(|_| self.gone())
    }

    fn send(&self, message: ControlMsg) -> Result<()> {
        self.control.send_message(message).map_err(|_| self.gone())
    }

    fn gone(&self) -> Error {
        Error::ProjectionUnavailable {
            projection: self.name.clone(),
            reason: "it is stopped".into(),
        }
    }
}

impl crate::shared::Stoppable for ProjectionHandle {
    fn stop_boxed(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // An already stopped projection answers at once.
            let _ = self.stop().await;
        })
    }
}

fn unavailable(state: &ProjectionState) -> Option<String> {
    match state {
        ProjectionState::GaveUp { reason } => Some(format!("its supervisor gave up: {reason}")),
        ProjectionState::Stopped => Some("it is stopped".into()),
        _ => None,
    }
}
