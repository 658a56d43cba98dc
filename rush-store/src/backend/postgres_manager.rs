//! The PostgreSQL engine (feature `postgres`, on tokio-postgres): one journal that several
//! processes share. The server sees only keys and sealed bytes; the database is the
//! single-writer authority, so nothing exact only for one process is kept here: guards are
//! checked inside each transaction under a transaction-scoped advisory lock per guarded
//! key, and log offsets come from a head row per log, updated in the committing
//! transaction, whose row lock orders the commits of every process (offsets gap-free and in
//! commit order; never a sequence as a read cursor). Schema: FORMAT.md.
//!
//! The engine's calls are synchronous, like every engine's: the database core calls them on
//! its own threads, and they drive a pool of connections on a small runtime of the
//! engine's own. Called on a tokio worker anyway (the synchronous `Store` API used in
//! async code), a call runs on a short-lived thread of its own and the worker waits, as it
//! would for a file engine's read: blocking on the engine's runtime from a worker would
//! panic.

mod commit;
mod config;
mod connection;
mod notify;
mod schema;
mod tls;

pub use config::PostgresConfig;
pub use tls::PostgresTls;

use super::commit_mark::{clamp_end, is_reserved, refuse_reserved};
use super::{Backend, Durable, GuardFailed, WriteBatch};
use crate::error::{Error, Result};
use connection::{Connection, gone, pg_error};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// A PostgreSQL database schema as an engine. Cheap to clone: clones share connections.
///
/// ```no_run
/// use rush_store::{PostgresManager, Store, PersistentActor};
/// # #[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
/// # struct Counter { n: u64 }
/// # impl PersistentActor for Counter { type Event = u64; fn apply(&mut self, e: &u64) { self.n += e } }
/// let engine = PostgresManager::connect("postgres://rush@db.internal/app", "bank")?;
/// let mut store = Store::<Counter>::new("counters", "c-1", std::sync::Arc::new(engine), None, false)?;
/// store.persist(&1)?;
/// # Ok::<(), rush_store::Error>(())
/// ```
#[derive(Clone)]
pub struct PostgresManager {
    inner: Arc<Inner>,
}

struct Inner {
    config: PostgresConfig,
    /// Taken out on drop, to shut down without blocking whatever thread drops it.
    runtime: Option<tokio::runtime::Runtime>,
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    /// The channel other processes' commits notify, and this handle's own payload.
    channel: String,
    own: String,
    /// Started by the first subscriber: see `notify`.
    listening: OnceLock<watch::Receiver<u64>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.connections.clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PostgresManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresManager")
            .field("schema", &self.inner.config.schema)
            .finish_non_exhaustive()
    }
}

/// The runtime of a handle and how long a call may take on it.
struct Driver<'a> {
    runtime: &'a tokio::runtime::Runtime,
    limit: Duration,
}

impl Driver<'_> {
    /// Runs `work` on the engine's runtime, giving up after the call limit.
    fn run<T>(&self, operation: &'static str, work: impl Future<Output = Result<T>>) -> Result<T> {
        self.runtime
            .block_on(async { tokio::time::timeout(self.limit, work).await })
            .map_err(|_| gone(operation, "the server did not answer in time"))?
    }
}

impl PostgresManager {
    /// Connects to `url` (`postgres://user@host:port/db`) with the defaults of
    /// [`PostgresConfig`], using the schema `schema`.
    ///
    /// # Errors
    ///
    /// As [`PostgresManager::open`].
    pub fn connect(url: &str, schema: &str) -> Result<Self> {
        Self::open(PostgresConfig::new(url, schema))
    }

    /// Connects as `config` says, creating Rush's tables in its schema or upgrading them.
    /// A schema written by a newer version of Rush is refused.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`]: a bad schema name, no connections, a URL that does not
    ///   parse, a schema written by a newer Rush, TLS without the `postgres-tls` feature or
    ///   with an unusable certificate authority.
    /// - [`Error::NotADatabase`]: the schema holds no Rush tables and
    ///   [`PostgresConfig::create`] is false.
    /// - [`Error::Io`]: the server cannot be reached or does not answer in time; other
    ///   server errors are [`Error::Storage`].
    pub fn open(config: PostgresConfig) -> Result<Self> {
        config.check()?;
        off_runtime("connect", || Self::open_here(config))
    }

    /// [`Self::open`], off any tokio runtime.
    fn open_here(config: PostgresConfig) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rush-postgres")
            .enable_all()
            .build()
            .map_err(|e| Error::from_io("start the PostgreSQL engine's runtime", &e))?;
        let connections = runtime.block_on(async {
            let mut first = connection::open_client(&config).await?;
            schema::migrate(
                &mut first,
                &config.schema,
                config.create,
                &config.describe(),
            )
            .await?;
            let mut connections = vec![Mutex::new(Connection::prepare(first).await?)];
            while connections.len() < config.connections {
                connections.push(Mutex::new(Connection::open(&config).await?));
            }
            Ok::<_, Error>(connections)
        })?;
        let channel = format!("rush_{}", config.schema);
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| Inner {
            own: format!("{}-{:x}", std::process::id(), weak.as_ptr() as usize),
            config,
            runtime: Some(runtime),
            connections,
            next: AtomicUsize::new(0),
            channel,
            listening: OnceLock::new(),
        });
        Ok(Self { inner })
    }

    /// A connection (a free one, else the next in turn) and the runtime that drives it.
    fn connection(&self) -> Result<(MutexGuard<'_, Connection>, Driver<'_>)> {
        let closed = || Error::storage("connect", "the PostgreSQL engine is closed");
        let runtime = self.inner.runtime.as_ref().ok_or_else(closed)?;
        let driver = Driver {
            runtime,
            limit: self.inner.config.statement_timeout + Duration::from_secs(1),
        };
        let connections = &self.inner.connections;
        let free = connections.iter().find_map(|c| c.try_lock().ok());
        let mut connection = match free {
            Some(free) => free,
            None => {
                let at = self.inner.next.fetch_add(1, Ordering::Relaxed) % connections.len().max(1);
                let connection = connections.get(at).ok_or_else(closed)?;
                connection.lock().unwrap_or_else(PoisonError::into_inner)
            }
        };
        // A connection the server dropped (a restart, a terminated backend) is replaced.
        if connection.client.is_closed() {
            *connection = driver.run("connect", Connection::open(&self.inner.config))?;
        }
        Ok((connection, driver))
    }

    /// Runs `work` on a connection. A connection found gone (the server restarted, the
    /// backend was terminated, a call went unanswered) is replaced, and `work` runs once
    /// more if `retry` (reads: they change nothing); a write's error stands, its outcome
    /// unknown.
    fn on_connection<T: Send>(
        &self,
        retry: bool,
        work: impl Fn(&Connection, &Driver<'_>) -> Result<T> + Sync,
    ) -> Result<T> {
        off_runtime("call PostgreSQL", || {
            let (mut connection, driver) = self.connection()?;
            match work(&connection, &driver) {
                Err(error @ Error::Io { .. }) => {
                    *connection = driver.run("connect", Connection::open(&self.inner.config))?;
                    if retry {
                        work(&connection, &driver)
                    } else {
                        Err(error)
                    }
                }
                other => other,
            }
        })
    }

    /// Commits `batch` in one transaction, durably (synchronous commit) or not.
    fn commit_with(&self, batch: &WriteBatch, durable: bool) -> Result<Result<(), GuardFailed>> {
        refuse_reserved(batch)?;
        let notice = commit::Notice {
            channel: &self.inner.channel,
            payload: &self.inner.own,
        };
        self.on_connection(false, |connection, driver| {
            driver.run(
                "write batch",
                commit::commit(connection, batch, durable, &notice),
            )
        })
    }
}

/// Runs `work` here, or, on a tokio worker (where blocking on the engine's runtime would
/// panic), on a thread of its own while the worker waits.
fn off_runtime<T: Send>(
    operation: &'static str,
    work: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| {
        let call = std::thread::Builder::new()
            .name("rush-postgres-call".into())
            .spawn_scoped(scope, work)
            .map_err(|e| Error::from_io(operation, &e))?;
        call.join()
            .unwrap_or_else(|panic| Err(Error::panicked(operation, &*panic)))
    })
}

impl Backend for PostgresManager {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if is_reserved(key) {
            return Ok(None);
        }
        self.on_connection(true, |connection, driver| {
            driver.run("read", async {
                let err = |e: tokio_postgres::Error| pg_error("read", &e);
                match connection
                    .client
                    .query_opt(&connection.statements.get, &[&key])
                    .await
                    .map_err(err)?
                {
                    Some(row) => Ok(Some(row.try_get(0).map_err(err)?)),
                    None => Ok(None),
                }
            })
        })
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = clamp_end(end);
        if start >= end || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let order = if reverse { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT key, value FROM rush_records WHERE key >= $1 AND key < $2 \
             ORDER BY key {order} LIMIT $3"
        );
        self.on_connection(true, |connection, driver| {
            driver.run("scan", async {
                let err = |e: tokio_postgres::Error| pg_error("scan", &e);
                let rows = connection
                    .client
                    .query(&sql, &[&start, &end, &limit])
                    .await
                    .map_err(err)?;
                let mut entries = Vec::with_capacity(rows.len());
                for row in rows {
                    entries.push((row.try_get(0).map_err(err)?, row.try_get(1).map_err(err)?));
                }
                Ok(entries)
            })
        })
    }

    fn commit(&self, batch: &WriteBatch) -> Result<Result<(), GuardFailed>> {
        self.commit_with(batch, false)
    }

    fn commit_durable(&self, batch: &WriteBatch) -> Result<Durable> {
        self.commit_with(batch, true)
            .map(|committed| (committed, None))
    }

    fn flush(&self) -> Result<()> {
        // A synchronous commit waits until the WAL is flushed up to it, which covers every
        // commit before it, made with synchronous_commit off or not.
        self.on_connection(false, |connection, driver| {
            driver.run("flush", async {
                let client = &connection.client;
                let flushed = client
                    .batch_execute(
                        "BEGIN; SET LOCAL synchronous_commit = on; \
                         UPDATE rush_schema SET version = version; COMMIT",
                    )
                    .await;
                if flushed.is_err() {
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                flushed.map_err(|e| pg_error("flush", &e))
            })
        })
    }

    fn size_on_disk(&self) -> Result<u64> {
        self.on_connection(true, |connection, driver| {
            driver.run("size on disk", async {
                let err = |e: tokio_postgres::Error| pg_error("size on disk", &e);
                let bytes: i64 = connection
                    .client
                    .query_one(
                        "SELECT pg_total_relation_size('rush_records') \
                         + pg_total_relation_size('rush_log_heads')",
                        &[],
                    )
                    .await
                    .map_err(err)?
                    .try_get(0)
                    .map_err(err)?;
                Ok(u64::try_from(bytes).unwrap_or(0))
            })
        })
    }

    fn appended_elsewhere(&self) -> Option<watch::Receiver<u64>> {
        let runtime = self.inner.runtime.as_ref()?;
        Some(
            self.inner
                .listening
                .get_or_init(|| {
                    notify::listen(
                        runtime,
                        self.inner.config.clone(),
                        self.inner.channel.clone(),
                        self.inner.own.clone(),
                    )
                })
                .clone(),
        )
    }

    fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }
}
