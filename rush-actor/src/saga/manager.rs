//! The saga manager: definitions by name, one driver at a time per saga, and the tables
//! beside the journals (the saga index and the dead letters).

use super::dead_letter::{self, DeadLetter, DeadLetters};
use super::retention::Retention;
use super::runner::{self, Definition, Runner};
use super::{SagaDefinition, SagaOutcome, SagaStatus};
use crate::error::{Error, Result};
use crate::persistence::Persistence;
use rush_store::Table;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// The table listing every saga started, so incomplete ones can be found after a crash.
pub(super) const INDEX_TABLE: &str = "rush.saga-index";

/// At most this many sagas are resumed at once by [`Sagas::resume_incomplete`].
const RESUME_CONCURRENCY: usize = 16;

/// A row of the saga index, under `<saga name>/<saga id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexRow {
    pub(crate) name: String,
    pub(crate) saga_id: String,
    /// Set once the saga's journal says it ended: resumes skip it without reading it.
    pub(crate) finished: bool,
}

/// Drives sagas of one definition without knowing its data type.
#[async_trait::async_trait]
pub(crate) trait Driver: Send + Sync {
    /// Drives saga `saga_id` from its journal: `None` when it was never started.
    async fn resume(&self, sagas: Sagas, saga_id: String) -> Result<Option<SagaOutcome>>;

    /// Replays (or discards) the dead letter `letter` of saga `saga_id`.
    async fn settle(
        &self,
        sagas: Sagas,
        saga_id: String,
        letter: String,
        discard: bool,
    ) -> Result<SagaOutcome>;
}

#[derive(Clone)]
struct Registered {
    driver: Arc<dyn Driver>,
    typed: Arc<dyn Any + Send + Sync>,
}

struct Inner {
    persistence: Persistence,
    index: Table<IndexRow>,
    letters: Table<DeadLetter>,
    retention: Retention,
    definitions: RwLock<HashMap<&'static str, Registered>>,
    /// One lock per saga being driven: a saga is driven by one task at a time, like an
    /// actor handles one message at a time.
    running: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Runs sagas on a [`Persistence`] extension: register definitions, start sagas, resume
/// the ones a crash interrupted, and handle their dead letters. Cheap to clone.
///
/// Every saga runs in its own task: a panic in a step counts as a failed try (retried,
/// then parked), never takes the process down, and a caller that stops waiting does not
/// stop the saga.
///
/// Why a task and not a ractor actor per saga: a saga has one conversation at a time (a
/// start, a resume, a dead-letter decision), so a task holding the saga's lock gives the
/// actor's one-message-at-a-time guarantee without a mailbox to bound; and what a
/// supervisor restart would do (start again from the journal) is exactly what a retry or
/// a resume does.
#[derive(Clone)]
pub struct Sagas {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sagas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&'static str> = self
            .inner
            .definitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        f.debug_struct("Sagas")
            .field("definitions", &names)
            .finish_non_exhaustive()
    }
}

impl Sagas {
    /// Opens the manager on `persistence`: the sagas' journals and tables live in its
    /// database, with its keys and compression.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] with [`rush_store::Error::Shutdown`] after
    /// [`Persistence::shutdown`] (the saga tables cannot be opened).
    pub fn open(persistence: &Persistence) -> Result<Self> {
        let db = persistence.database();
        Ok(Self {
            inner: Arc::new(Inner {
                persistence: persistence.clone(),
                index: db.table(INDEX_TABLE)?,
                letters: db.table(dead_letter::TABLE)?,
                retention: Retention::default(),
                definitions: RwLock::default(),
                running: Mutex::default(),
            }),
        })
    }

    /// Registers a definition under [`SagaDefinition::NAME`]. Registering a name again
    /// replaces the definition for the sagas driven from then on: that is how a fixed
    /// step is deployed before its dead letters are replayed.
    pub fn register<S: SagaDefinition>(&self, definition: S) -> &Self {
        let typed = Arc::new(Definition::<S::Data> {
            name: S::NAME,
            steps: definition.steps(),
            retry: definition.retry_policy(),
        });
        let registered = Registered {
            driver: runner::driver(Arc::clone(&typed)),
            typed,
        };
        self.inner
            .definitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(S::NAME, registered);
        self
    }

    /// Starts saga `saga_id` of kind `S` with `data` and drives it until it ends or parks.
    ///
    /// A saga id is started once: if `S`'s saga `saga_id` exists, `data` is ignored and
    /// that saga is continued (or its outcome returned), so a caller that retries a start
    /// after a timeout or a crash cannot run the transaction twice. A step that fails is
    /// not an error: it is in the [`SagaOutcome`].
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSaga`] if `S` is not registered (or with another data type);
    /// [`Error::Journal`] when the saga's journal or the saga tables cannot be read or
    /// written; [`Error::SagaFailed`] when the journal does not fit the definition (steps
    /// were removed) or the saga's task panicked.
    pub async fn start<S: SagaDefinition>(
        &self,
        saga_id: &str,
        data: S::Data,
    ) -> Result<SagaOutcome> {
        let definition = self.typed::<S>()?;
        let saga_id = saga_id.to_owned();
        self.exclusive(S::NAME, &saga_id.clone(), move |sagas| async move {
            Runner::open(sagas, definition, saga_id)
                .await?
                .start(data)
                .await
        })
        .await
    }

    /// Finds every saga of the registered definitions that has not ended (a crash or a
    /// shutdown interrupted it) and drives each from its last journaled step, a few at a
    /// time. Returns `(saga id, outcome)` per saga, parked ones included (they stay
    /// parked: see [`Sagas::dead_letters`]). Also repairs the dead-letter table where a
    /// crash fell between a saga's journal and its letter.
    ///
    /// The saga index is read a page at a time, and the finished sagas past the retention
    /// found on the way are removed from it ([`Sagas::set_finished_retention`]).
    ///
    /// Every saga is tried; if some failed (a storage error), the first error is returned
    /// after the others ran, and calling again resumes what is left.
    ///
    /// # Errors
    ///
    /// The first of: [`Error::Journal`] when the saga index, a saga's journal or the dead
    /// letters cannot be read or written (a failed index read ends the listing there);
    /// [`Error::SagaFailed`] for a saga whose journal does not fit its definition or
    /// whose task panicked.
    pub async fn resume_incomplete(&self) -> Result<Vec<(String, SagaOutcome)>> {
        let names: Vec<&'static str> = self.registered_names();
        let permits = Arc::new(tokio::sync::Semaphore::new(RESUME_CONCURRENCY));
        let mut tasks = Vec::new();
        let mut first_error = None;
        let mut after = None;
        loop {
            let page = match self.index_page(after).await {
                Ok(page) => page,
                Err(error) => {
                    first_error = Some(error);
                    break;
                }
            };
            for row in page.unfinished {
                if !names.contains(&row.name.as_str()) {
                    continue;
                }
                // A permit before the task: at most RESUME_CONCURRENCY sagas in memory.
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let sagas = self.clone();
                tasks.push(tokio::spawn(async move {
                    let _permit = permit;
                    let outcome = sagas.resume_one(&row.name, &row.saga_id).await;
                    (row.saga_id, outcome)
                }));
            }
            match page.next {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            match task.await {
                Ok((saga_id, Ok(Some(outcome)))) => outcomes.push((saga_id, outcome)),
                Ok((_, Ok(None))) => {}
                Ok((_, Err(error))) => {
                    first_error.get_or_insert(error);
                }
                Err(join) => {
                    first_error.get_or_insert(Error::SagaFailed {
                        saga: "resume".into(),
                        reason: join.to_string(),
                    });
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(outcomes),
        }
    }

    /// The operator's view of the dead letters: list, replay, discard.
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters {
            sagas: self.clone(),
        }
    }

    /// Where saga `saga_id` of kind `S` stands (`None`: never started), read from its
    /// journal.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSaga`] if `S` is not registered (or with another data type);
    /// [`Error::Journal`] when the saga's journal cannot be opened or read.
    pub async fn status<S: SagaDefinition>(&self, saga_id: &str) -> Result<Option<SagaStatus>> {
        let definition = self.typed::<S>()?;
        let runner =
            Runner::open(self.clone(), Arc::clone(&definition), saga_id.to_owned()).await?;
        Ok(runner.status())
    }

    /// The extension the sagas command entities through.
    pub fn persistence(&self) -> &Persistence {
        &self.inner.persistence
    }

    pub(crate) fn letters(&self) -> &Table<DeadLetter> {
        &self.inner.letters
    }

    pub(crate) fn index(&self) -> &Table<IndexRow> {
        &self.inner.index
    }

    pub(crate) fn retention(&self) -> &Retention {
        &self.inner.retention
    }

    /// Replays (`discard == false`) or discards the dead letter `id`.
    pub(crate) async fn settle_letter(&self, id: &str, discard: bool) -> Result<SagaOutcome> {
        let letter = self
            .letters()
            .get(id)?
            .ok_or_else(|| Error::DeadLetterNotFound { id: id.to_owned() })?;
        let driver = self.driver(&letter.saga_name)?;
        let (saga_id, letter_id) = (letter.saga_id.clone(), letter.id.clone());
        self.exclusive(
            &letter.saga_name,
            &letter.saga_id,
            move |sagas| async move { driver.settle(sagas, saga_id, letter_id, discard).await },
        )
        .await
    }

    async fn resume_one(&self, name: &str, saga_id: &str) -> Result<Option<SagaOutcome>> {
        let driver = self.driver(name)?;
        let id = saga_id.to_owned();
        self.exclusive(name, saga_id, move |sagas| async move {
            driver.resume(sagas, id).await
        })
        .await
    }

    /// Runs `drive` in its own task while holding saga `name/saga_id`'s lock. The task
    /// isolates a panic of the saga's own code and finishes even if the caller stops
    /// waiting.
    async fn exclusive<F, Fut, T>(&self, name: &str, saga_id: &str, drive: F) -> Result<T>
    where
        F: FnOnce(Sagas) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let key = format!("{name}/{saga_id}");
        let lock = Arc::clone(
            self.inner
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key.clone())
                .or_default(),
        );
        let sagas = self.clone();
        let task = tokio::spawn(async move {
            let _turn = lock.lock_owned().await;
            drive(sagas).await
        });
        let result = task.await;
        {
            let mut running = self
                .inner
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if running.get(&key).is_some_and(|l| Arc::strong_count(l) == 1) {
                running.remove(&key);
            }
        }
        result.map_err(|join| Error::SagaFailed {
            saga: key,
            reason: if join.is_panic() {
                "the saga's driver panicked".into()
            } else {
                join.to_string()
            },
        })?
    }

    fn registered_names(&self) -> Vec<&'static str> {
        self.inner
            .definitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    fn registered(&self, name: &str) -> Result<Registered> {
        self.inner
            .definitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownSaga {
                name: name.to_owned(),
            })
    }

    fn driver(&self, name: &str) -> Result<Arc<dyn Driver>> {
        Ok(self.registered(name)?.driver)
    }

    fn typed<S: SagaDefinition>(&self) -> Result<Arc<Definition<S::Data>>> {
        self.registered(S::NAME)?
            .typed
            .downcast::<Definition<S::Data>>()
            .map_err(|_| Error::UnknownSaga {
                name: format!("{} (registered with another data type)", S::NAME),
            })
    }
}
