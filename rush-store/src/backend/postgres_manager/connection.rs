//! One connection to the server: the client, its statements prepared once, and the
//! mapping of PostgreSQL's errors to Rush's, keeping "the server is away" apart.

use super::PostgresConfig;
use crate::backend::log_block::BLOCK_HEAD_LEN;
use crate::error::{Error, Result};
use std::time::Duration;
use tokio_postgres::{Client, Statement};

/// A PostgreSQL error, keeping its kind: a connection that is gone (the server stopped or
/// restarted, the network failed, the backend was terminated) is [`Error::Io`], so a caller
/// can tell "the server is away, the outcome is unknown" from a refused statement.
pub(super) fn pg_error(operation: &'static str, err: &tokio_postgres::Error) -> Error {
    use std::error::Error as _;
    if let Some(io) = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
    {
        return Error::from_io(operation, io);
    }
    if err.is_closed() || err.code().is_some_and(|c| c.code().starts_with("57P")) {
        return gone(operation, err);
    }
    Error::storage(operation, err)
}

/// A lost connection or an unanswered call, as the typed I/O error callers retry on.
pub(super) fn gone(operation: &'static str, why: impl std::fmt::Display) -> Error {
    let gone = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, why.to_string());
    Error::from_io(operation, &gone)
}

/// The statements every commit and read uses, prepared when the connection opens.
pub(super) struct Statements {
    pub(super) get: Statement,
    pub(super) lock_keys: Statement,
    pub(super) read_keys: Statement,
    pub(super) lock_heads: Statement,
    pub(super) log_ends: Statement,
    pub(super) create_heads: Statement,
    pub(super) move_heads: Statement,
    pub(super) put: Statement,
    pub(super) put_new: Statement,
    pub(super) delete: Statement,
    pub(super) notify: Statement,
}

/// A client and its prepared statements.
pub(super) struct Connection {
    pub(super) client: Client,
    pub(super) statements: Statements,
}

/// Opens a client with `config`'s schema on its search path and its statement timeout,
/// driving the connection on the current runtime. Prepared statements are planned for
/// their arguments each time: a generic plan made while the tables were small reads
/// `key = ANY($1)` by a sequential scan forever after (measured: 12 ms a commit at
/// 50,000 records, against 0.1 ms by the index).
pub(super) async fn open_client(config: &PostgresConfig) -> Result<Client> {
    let settings = config.settings()?;
    let connecting = super::tls::connect(&settings, config, None);
    let client = tokio::time::timeout(config.connect_timeout, connecting)
        .await
        .map_err(|_| gone("connect", "the server did not answer in time"))??;
    let timeout_ms = millis(config.statement_timeout);
    client
        .batch_execute(&format!(
            "SET search_path TO {schema}; \
             SET statement_timeout = {timeout_ms}; SET plan_cache_mode = force_custom_plan",
            schema = config.schema
        ))
        .await
        .map_err(|e| pg_error("choose the schema", &e))?;
    Ok(client)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Connection {
    /// Prepares the statements on `client` (the tables exist: see `schema`).
    pub(super) async fn prepare(client: Client) -> Result<Self> {
        let err = |e: tokio_postgres::Error| pg_error("prepare statements", &e);
        let statements = Statements {
            get: client
                .prepare("SELECT value FROM rush_records WHERE key = $1")
                .await
                .map_err(err)?,
            // Array order is lock order: the caller sorts the ids.
            lock_keys: client
                .prepare("SELECT pg_advisory_xact_lock(id) FROM unnest($1::bigint[]) AS id")
                .await
                .map_err(err)?,
            read_keys: client
                .prepare("SELECT key, value FROM rush_records WHERE key = ANY($1)")
                .await
                .map_err(err)?,
            lock_heads: client
                .prepare(
                    "SELECT log, last FROM rush_log_heads WHERE log = ANY($1) \
                     ORDER BY log FOR UPDATE",
                )
                .await
                .map_err(err)?,
            // Per log (and the key bound after it): its last block's key and the block's
            // head (version and entry count, in either block version), without the block
            // itself.
            log_ends: client
                .prepare(&format!(
                    "SELECT l.log, b.key, b.head FROM unnest($1::bytea[], $2::bytea[]) AS l(log, after) \
                     LEFT JOIN LATERAL (SELECT key, substring(value FROM 1 FOR {BLOCK_HEAD_LEN}) AS head \
                     FROM rush_records WHERE key >= l.log AND key < l.after \
                     ORDER BY key DESC LIMIT 1) AS b ON true",
                ))
                .await
                .map_err(err)?,
            create_heads: client
                .prepare(
                    "INSERT INTO rush_log_heads SELECT * FROM unnest($1::bytea[], $2::bigint[]) \
                     ON CONFLICT (log) DO NOTHING",
                )
                .await
                .map_err(err)?,
            move_heads: client
                .prepare(
                    "UPDATE rush_log_heads AS h SET last = c.last \
                     FROM unnest($1::bytea[], $2::bigint[]) AS c(log, last) WHERE h.log = c.log",
                )
                .await
                .map_err(err)?,
            put: client
                .prepare(
                    "INSERT INTO rush_records SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                )
                .await
                .map_err(err)?,
            put_new: client
                .prepare("INSERT INTO rush_records SELECT * FROM unnest($1::bytea[], $2::bytea[])")
                .await
                .map_err(err)?,
            delete: client
                .prepare("DELETE FROM rush_records WHERE key = ANY($1)")
                .await
                .map_err(err)?,
            notify: client
                .prepare("SELECT pg_notify($1, $2)")
                .await
                .map_err(err)?,
        };
        Ok(Self { client, statements })
    }

    /// A new connection, ready for commits and reads.
    pub(super) async fn open(config: &PostgresConfig) -> Result<Self> {
        Self::prepare(open_client(config).await?).await
    }
}
