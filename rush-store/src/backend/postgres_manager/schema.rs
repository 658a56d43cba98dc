//! Rush's tables in a schema (FORMAT.md, "PostgreSQL"): created on first open, upgraded by
//! the migrations below on a later one, and refused when written by a newer Rush.

use super::connection::pg_error;
use crate::error::{Error, Result};
use tokio_postgres::Client;

/// The schema version this code writes and reads.
pub(super) const SCHEMA_VERSION: i32 = 1;

/// The statements that bring a schema from version `n - 1` to `n`, at index `n - 1`.
const MIGRATIONS: [&str; 1] = [
    "CREATE TABLE IF NOT EXISTS rush_records (key bytea PRIMARY KEY, value bytea NOT NULL);
     CREATE TABLE IF NOT EXISTS rush_log_heads (log bytea PRIMARY KEY, last bigint NOT NULL)",
];

/// An advisory lock id: one process migrates a database at a time.
const MIGRATION_LOCK: i64 = 7_265_736_801;

/// Creates the schema and tables of a new journal (unless `create` is false: then a
/// schema without Rush's tables is [`Error::NotADatabase`]), applies the migrations an
/// older one lacks, or refuses a newer one. `place` names the database in errors.
pub(super) async fn migrate(
    client: &mut Client,
    schema: &str,
    create: bool,
    place: &str,
) -> Result<()> {
    let err = |e: tokio_postgres::Error| pg_error("migrate", &e);
    let txn = client.transaction().await.map_err(err)?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(err)?;
    if !create {
        let exists: bool = txn
            .query_one("SELECT to_regclass('rush_schema') IS NOT NULL", &[])
            .await
            .map_err(err)?
            .try_get(0)
            .map_err(err)?;
        if !exists {
            return Err(Error::NotADatabase {
                path: place.into(),
                reason: format!("schema {schema} holds no Rush tables"),
            });
        }
    }
    txn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await
        .map_err(err)?;
    txn.batch_execute("CREATE TABLE IF NOT EXISTS rush_schema (version integer NOT NULL)")
        .await
        .map_err(err)?;
    let version: Option<i32> = txn
        .query_one("SELECT max(version) FROM rush_schema", &[])
        .await
        .map_err(err)?
        .try_get(0)
        .map_err(err)?;
    let version = version.unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(Error::InvalidArgument(format!(
            "schema {schema} is at version {version}, newer than this code's \
             {SCHEMA_VERSION}: upgrade Rush to open it"
        )));
    }
    for (at, migration) in MIGRATIONS.iter().enumerate() {
        let to = i32::try_from(at + 1).unwrap_or(i32::MAX);
        if to > version {
            txn.batch_execute(migration).await.map_err(err)?;
            txn.execute("INSERT INTO rush_schema VALUES ($1)", &[&to])
                .await
                .map_err(err)?;
        }
    }
    txn.commit().await.map_err(err)
}
