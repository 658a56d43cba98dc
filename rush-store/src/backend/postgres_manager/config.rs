//! How a PostgreSQL engine reaches its server: the URL, the schema, the pool size and the
//! timeouts, checked before anything connects.

use super::PostgresTls;
use crate::error::{Error, Result};
use std::time::Duration;

/// How to reach the server, and how patient to be with it.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user[:password]@host[:port]/database` (or the `key=value` form).
    pub url: String,
    /// The schema holding Rush's tables: lowercase letters, digits and `_`, at most 50
    /// characters; created if missing. Several journals can share a database this way.
    pub schema: String,
    /// Connections in the pool (at least 1; default 4). The database core's writer uses
    /// one at a time, readers the others.
    pub connections: usize,
    /// How long to wait for a connection to open (default 10 s).
    pub connect_timeout: Duration,
    /// The longest one engine call may take (default 30 s): the server cancels a
    /// statement past it (`statement_timeout`), and the engine gives up on an unanswered
    /// call a second after, with an [`Error::Io`], replacing the connection.
    pub statement_timeout: Duration,
    /// Whether the connection is encrypted (default: not).
    pub tls: PostgresTls,
    /// Whether to create the schema and Rush's tables when they are missing (default);
    /// when false, a schema without them is [`Error::NotADatabase`] (tools that must not
    /// change what they look at).
    pub create: bool,
}

impl PostgresConfig {
    /// The defaults, for the database at `url` and the schema `schema`.
    pub fn new(url: &str, schema: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: schema.to_owned(),
            connections: 4,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            tls: PostgresTls::Disabled,
            create: true,
        }
    }

    /// The database and schema, for messages (the URL without its password).
    pub fn describe(&self) -> String {
        let place = self.settings().map_or_else(
            |_| "a PostgreSQL database".to_owned(),
            |settings| {
                let hosts: Vec<String> = settings
                    .get_hosts()
                    .iter()
                    .map(|host| match host {
                        tokio_postgres::config::Host::Tcp(name) => name.clone(),
                        #[cfg(unix)]
                        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                    })
                    .collect();
                format!(
                    "PostgreSQL database {} on {}",
                    settings.get_dbname().unwrap_or("(default)"),
                    hosts.join(",")
                )
            },
        );
        format!("{place}, schema {}", self.schema)
    }

    /// The URL parsed, with the connect timeout applied.
    pub(super) fn settings(&self) -> Result<tokio_postgres::Config> {
        let mut settings: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e| Error::InvalidArgument(format!("PostgreSQL URL: {e}")))?;
        settings.connect_timeout(self.connect_timeout);
        settings.application_name("rush");
        Ok(settings)
    }

    /// Refuses a schema name that is not a plain identifier, or a pool of no connections.
    pub(super) fn check(&self) -> Result<()> {
        let schema = &self.schema;
        let fine = !schema.is_empty()
            && schema.len() <= 50
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !fine {
            return Err(Error::InvalidArgument(format!(
                "schema name {schema:?}: use 1 to 50 lowercase letters, digits and _"
            )));
        }
        if self.connections == 0 {
            return Err(Error::InvalidArgument(
                "a PostgreSQL engine needs at least one connection".into(),
            ));
        }
        Ok(())
    }
}
