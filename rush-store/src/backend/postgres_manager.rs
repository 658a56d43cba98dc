//! The PostgreSQL engine (feature `postgres`, on tokio-postgres): one journal that several
//! processes share. The server sees only keys and sealed bytes; the database is the
//! single-writer authority, so nothing exact only for one process is kept here: guards are
//! checked inside each transaction under a transaction-scoped advisory lock per guarded
//! key, and log offsets come from a head row per log, updated in the committing
//! transaction, whose row lock orders the commits of every process (offsets gap-free and in
//! commit order; never a sequence as a read cursor). Schema: FORMAT.md.
//!
//! The engine's calls are synchronous, like every engine's: they run on the database
//! core's threads and drive the connections on a small runtime of the engine's own. Called
//! from a tokio worker, they refuse with [`Error::InvalidArgument`] instead of blocking it.

use super::commit_mark::{clamp_end, is_reserved, refuse_reserved};
use super::{Backend, Durable, GuardFailed, Sequencer, WriteBatch, WriteOp};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The schema version this code writes and reads.
const SCHEMA_VERSION: i32 = 1;
/// Connections per engine handle.
const CONNECTIONS: usize = 4;

/// A PostgreSQL database schema as an engine. Cheap to clone: clones share connections.
#[derive(Clone)]
pub struct PostgresManager {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    schema: String,
    /// Taken out on drop, to shut down without blocking whatever thread drops it.
    runtime: Option<tokio::runtime::Runtime>,
    clients: Vec<Mutex<tokio_postgres::Client>>,
    next: AtomicUsize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.clients.clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PostgresManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresManager")
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

/// A PostgreSQL error, keeping its kind: a connection that is gone (the server stopped or
/// restarted, the network failed, the backend was terminated) is [`Error::Io`], so a caller
/// can tell "the server is away, the outcome is unknown" from a refused statement.
fn pg_error(operation: &'static str, err: &tokio_postgres::Error) -> Error {
    use std::error::Error as _;
    if let Some(io) = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
    {
        return Error::from_io(operation, io);
    }
    if err.is_closed() || err.code().is_some_and(|c| c.code().starts_with("57P")) {
        let gone = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, err.to_string());
        return Error::from_io(operation, &gone);
    }
    Error::storage(operation, err)
}

/// Opens one connection to `url` with `schema` on its search path.
async fn connect_one(url: &str, schema: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| pg_error("connect", &e))?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
        ))
        .await
        .map_err(|e| pg_error("choose the schema", &e))?;
    Ok(client)
}

impl PostgresManager {
    /// Connects to `url` (`postgres://user@host:port/db`) and uses the schema `schema`
    /// (letters, digits and `_`; created if missing), creating or upgrading Rush's tables
    /// in it. A schema written by a newer version of Rush is refused.
    pub fn connect(url: &str, schema: &str) -> Result<Self> {
        if schema.is_empty()
            || !schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Error::InvalidArgument(format!(
                "schema name {schema:?}: use lowercase letters, digits and _"
            )));
        }
        refuse_on_runtime()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rush-postgres")
            .enable_all()
            .build()
            .map_err(|e| Error::from_io("start the PostgreSQL engine's runtime", &e))?;
        let clients = runtime.block_on(async {
            let mut clients = Vec::with_capacity(CONNECTIONS);
            for _ in 0..CONNECTIONS {
                clients.push(Mutex::new(connect_one(url, schema).await?));
            }
            Ok::<_, Error>(clients)
        })?;
        let manager = Self {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                schema: schema.to_owned(),
                runtime: Some(runtime),
                clients,
                next: AtomicUsize::new(0),
            }),
        };
        manager.migrate()?;
        Ok(manager)
    }

    /// Creates the tables of a new schema, or checks the version of an existing one.
    fn migrate(&self) -> Result<()> {
        self.on_connection(false, |client, runtime| {
            runtime.block_on(async {
                let txn = client
                    .transaction()
                    .await
                    .map_err(|e| pg_error("migrate", &e))?;
                // One process migrates at a time.
                txn.execute("SELECT pg_advisory_xact_lock(7265736801)", &[])
                    .await
                    .map_err(|e| pg_error("migrate", &e))?;
                txn.batch_execute(
                    "CREATE TABLE IF NOT EXISTS rush_schema (version integer NOT NULL);
                     CREATE TABLE IF NOT EXISTS rush_records (key bytea PRIMARY KEY, value bytea NOT NULL);
                     CREATE TABLE IF NOT EXISTS rush_log_heads (log bytea PRIMARY KEY, last bigint NOT NULL)",
                )
                .await
                .map_err(|e| pg_error("migrate", &e))?;
                let version: Option<i32> = txn
                    .query_opt("SELECT max(version) FROM rush_schema", &[])
                    .await
                    .map_err(|e| pg_error("migrate", &e))?
                    .and_then(|row| row.get(0));
                match version {
                    None => {
                        txn.execute("INSERT INTO rush_schema VALUES ($1)", &[&SCHEMA_VERSION])
                            .await
                            .map_err(|e| pg_error("migrate", &e))?;
                    }
                    Some(v) if v > SCHEMA_VERSION => {
                        return Err(Error::InvalidArgument(format!(
                            "schema {} is at version {v}, newer than this code's {SCHEMA_VERSION}: \
                             upgrade Rush to open it",
                            self.inner.schema
                        )));
                    }
                    Some(_) => {}
                }
                txn.commit().await.map_err(|e| pg_error("migrate", &e))
            })
        })
    }

    /// A connection (a free one, else the next in turn) and the runtime that drives it.
    fn client(
        &self,
    ) -> Result<(
        MutexGuard<'_, tokio_postgres::Client>,
        &tokio::runtime::Runtime,
    )> {
        let closed = || Error::storage("connect", "the PostgreSQL engine is closed");
        let runtime = self.inner.runtime.as_ref().ok_or_else(closed)?;
        let clients = &self.inner.clients;
        let free = clients.iter().find_map(|client| client.try_lock().ok());
        let mut client = match free {
            Some(free) => free,
            None => {
                let at = self.inner.next.fetch_add(1, Ordering::Relaxed) % clients.len().max(1);
                let client = clients.get(at).ok_or_else(closed)?;
                client.lock().unwrap_or_else(PoisonError::into_inner)
            }
        };
        // A connection the server dropped (a restart, a terminated backend) is replaced.
        if client.is_closed() {
            *client = runtime.block_on(connect_one(&self.inner.url, &self.inner.schema))?;
        }
        Ok((client, runtime))
    }

    /// Runs `work` on a connection. A connection found gone (the server restarted, the
    /// backend was terminated) is replaced, and `work` runs once more if `retry` (reads:
    /// they change nothing); a write's error stands, its outcome unknown.
    fn on_connection<T>(
        &self,
        retry: bool,
        work: impl Fn(&mut tokio_postgres::Client, &tokio::runtime::Runtime) -> Result<T>,
    ) -> Result<T> {
        let (mut client, runtime) = self.client()?;
        match work(&mut client, runtime) {
            Err(error @ Error::Io { .. }) => {
                *client = runtime.block_on(connect_one(&self.inner.url, &self.inner.schema))?;
                if retry {
                    work(&mut client, runtime)
                } else {
                    Err(error)
                }
            }
            other => other,
        }
    }

    /// Commits `batch` in one transaction, durably (synchronous commit) or not.
    fn commit_with(&self, batch: &WriteBatch, durable: bool) -> Result<Result<(), GuardFailed>> {
        refuse_reserved(batch)?;
        refuse_on_runtime()?;
        self.on_connection(false, |client, runtime| {
            runtime.block_on(async {
                let err = |e: tokio_postgres::Error| pg_error("write batch", &e);
                let txn = client.transaction().await.map_err(err)?;
                let sync = if durable { "on" } else { "off" };
                txn.batch_execute(&format!("SET LOCAL synchronous_commit = {sync}"))
                    .await
                    .map_err(err)?;
                // Guarded keys are locked for the transaction, in one order, so that two
                // processes checking the same free slot take turns.
                let mut locks: Vec<i64> = batch.guards.iter().map(|g| lock_id(&g.key)).collect();
                locks.sort_unstable();
                locks.dedup();
                for id in &locks {
                    txn.execute("SELECT pg_advisory_xact_lock($1)", &[id])
                        .await
                        .map_err(err)?;
                }
                for (index, guard) in batch.guards.iter().enumerate() {
                    let actual: Option<Vec<u8>> = txn
                        .query_opt("SELECT value FROM rush_records WHERE key = $1", &[&guard.key])
                        .await
                        .map_err(err)?
                        .map(|row| row.get(0));
                    if actual != guard.expected {
                        txn.rollback().await.map_err(err)?;
                        return Ok(Err(GuardFailed { index, actual }));
                    }
                }
                // Each log's head row moves by its appends; its row lock orders the commits.
                let mut counts: Vec<(&[u8], i64)> = Vec::new();
                for append in &batch.appends {
                    match counts.iter_mut().find(|(log, _)| *log == append.log.as_slice()) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((&append.log, 1)),
                    }
                }
                let mut ends: HashMap<Vec<u8>, u64> = HashMap::new();
                for (log, n) in counts {
                    txn.execute(
                        "INSERT INTO rush_log_heads VALUES ($1, 0) ON CONFLICT (log) DO NOTHING",
                        &[&log],
                    )
                    .await
                    .map_err(err)?;
                    let before: i64 = txn
                        .query_one(
                            "UPDATE rush_log_heads SET last = last + $2 WHERE log = $1 RETURNING last - $2",
                            &[&log, &n],
                        )
                        .await
                        .map_err(err)?
                        .get(0);
                    let before = u64::try_from(before).map_err(|_| Error::Corrupted {
                        record: format!("the head row of log {log:?}"),
                        reason: format!("negative offset {before}"),
                    })?;
                    ends.insert(log.to_vec(), before);
                }
                let assigned = Sequencer::default().assign(&batch.appends, |log| {
                    ends.get(log)
                        .copied()
                        .ok_or_else(|| Error::storage("assign offsets", "a log without a head row"))
                })?;
                // The last write to a key wins.
                let mut writes: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
                for op in &batch.ops {
                    match op {
                        WriteOp::Put { key, value } => writes.insert(key, Some(value)),
                        WriteOp::Delete { key } => writes.insert(key, None),
                    };
                }
                for (key, block) in &assigned.blocks {
                    writes.insert(key, Some(block));
                }
                let (mut put_keys, mut put_values, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
                for (key, value) in writes {
                    match value {
                        Some(value) => {
                            put_keys.push(key);
                            put_values.push(value);
                        }
                        None => deletes.push(key),
                    }
                }
                if !put_keys.is_empty() {
                    txn.execute(
                        "INSERT INTO rush_records SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                        &[&put_keys, &put_values],
                    )
                    .await
                    .map_err(err)?;
                }
                if !deletes.is_empty() {
                    txn.execute("DELETE FROM rush_records WHERE key = ANY($1)", &[&deletes])
                        .await
                        .map_err(err)?;
                }
                txn.commit().await.map_err(err)?;
                Ok(Ok(()))
            })
        })
    }
}

/// The advisory lock of a guarded key (a collision only makes two keys take turns).
fn lock_id(key: &[u8]) -> i64 {
    let mut hasher = crc32fast::Hasher::new_with_initial(0x5255_5348);
    hasher.update(key);
    let high = i64::from(hasher.finalize());
    let low = i64::from(crc32fast::hash(key));
    (high << 32) ^ low
}

/// Engine calls block; on a tokio worker that would stall the runtime.
fn refuse_on_runtime() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::InvalidArgument(
            "the PostgreSQL engine was called on a tokio worker: go through the Database \
             (its threads call the engine), or spawn_blocking"
                .into(),
        ));
    }
    Ok(())
}

impl Backend for PostgresManager {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if is_reserved(key) {
            return Ok(None);
        }
        refuse_on_runtime()?;
        self.on_connection(true, |client, runtime| {
            runtime.block_on(async {
                Ok(client
                    .query_opt("SELECT value FROM rush_records WHERE key = $1", &[&key])
                    .await
                    .map_err(|e| pg_error("read", &e))?
                    .map(|row| row.get(0)))
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
        refuse_on_runtime()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let order = if reverse { "DESC" } else { "ASC" };
        self.on_connection(true, |client, runtime| {
            runtime.block_on(async {
                let rows = client
                    .query(
                        &format!(
                            "SELECT key, value FROM rush_records WHERE key >= $1 AND key < $2 \
                             ORDER BY key {order} LIMIT $3"
                        ),
                        &[&start, &end, &limit],
                    )
                    .await
                    .map_err(|e| pg_error("scan", &e))?;
                Ok(rows
                    .into_iter()
                    .map(|row| (row.get(0), row.get(1)))
                    .collect())
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
        refuse_on_runtime()?;
        // A synchronous commit waits until the WAL is flushed up to it, which covers every
        // commit before it, made with synchronous_commit off or not.
        self.on_connection(false, |client, runtime| {
            runtime.block_on(async {
                let err = |e: tokio_postgres::Error| pg_error("flush", &e);
                let txn = client.transaction().await.map_err(err)?;
                txn.batch_execute(
                    "SET LOCAL synchronous_commit = on; UPDATE rush_schema SET version = version",
                )
                .await
                .map_err(err)?;
                txn.commit().await.map_err(err)
            })
        })
    }

    fn size_on_disk(&self) -> Result<u64> {
        refuse_on_runtime()?;
        self.on_connection(true, |client, runtime| {
            runtime.block_on(async {
                let bytes: i64 = client
                    .query_one(
                        "SELECT pg_total_relation_size('rush_records') + pg_total_relation_size('rush_log_heads')",
                        &[],
                    )
                    .await
                    .map_err(|e| pg_error("size on disk", &e))?
                    .get(0);
                Ok(u64::try_from(bytes).unwrap_or(0))
            })
        })
    }

    fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }
}
