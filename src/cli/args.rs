//! The command line, as clap parses it.

use super::names::unescape;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Inspect and maintain a Rush database (a sled or redb folder, or a PostgreSQL schema)
/// from a shell.
#[derive(Debug, Parser)]
#[command(
    name = "rush",
    version,
    about = "Inspect and maintain a Rush database (a sled or redb folder, or a PostgreSQL schema)",
    long_about = "Inspect and maintain a Rush database (a sled or redb folder, or a PostgreSQL\n\
        schema: give postgres://user@host/db and --schema NAME).\n\n\
        The folder is never created. list, events, verify and stats look at a copy, so they\n\
        never change the database. The engine locks the folder: stop the application that\n\
        uses it before the other commands (backup excepted).\n\
        Keys are read from files or environment variables, never from the command line:\n\
        --key-file PATH or RUSH_KEY (64 hex digits, whitespace ignored, as `xxd -p` or\n\
        `openssl rand -hex 32` write them; a file may also hold exactly the 32 raw bytes).\n\n\
        Collection and entity ids are printed escaped as Rust writes strings, so that NUL,\n\
        newlines and other control characters cannot garble the output: \\0 \\n \\r \\t,\n\
        \\u{7} for other control characters, \\\\ for a backslash, \\\" for a quote.\n\
        Arguments take the same escapes (and \\x07 for an ASCII character), so what `list`\n\
        prints can be pasted back; a backslash that starts no escape is refused."
)]
pub(crate) struct Args {
    /// The database folder, or a PostgreSQL URL (`postgres://user@host/db`).
    pub(crate) folder: PathBuf,
    /// The schema of a PostgreSQL database holding the journal.
    #[arg(long, global = true, value_name = "NAME", default_value = "rush")]
    pub(crate) schema: String,
    /// File holding the database's key (64 hex digits or 32 raw bytes); else `RUSH_KEY`.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,
    /// File holding an older key that still opens some records (repeatable); else `RUSH_OLD_KEY`.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) old_key_file: Vec<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Args {
    /// The PostgreSQL URL given instead of a folder, if one was.
    pub(crate) fn postgres_url(&self) -> Option<&str> {
        let text = self.folder.to_str()?;
        (text.starts_with("postgres://") || text.starts_with("postgresql://")).then_some(text)
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Collections and entities: event counts, highest sequence numbers, snapshots, deletion marks.
    List,
    /// One entity's events as JSON lines: envelopes; with a key also meta blocks; decoded
    /// events for collections with a registered decoder.
    Events {
        /// The collection (escaped as `list` prints it).
        #[arg(value_parser = unescape)]
        collection: String,
        /// The entity id (escaped as `list` prints it).
        #[arg(value_parser = unescape)]
        entity: String,
        /// First sequence number to print.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
    /// Integrity report of everything, one collection or one entity. Exit code 0: clean;
    /// 1: errors found.
    Verify {
        /// Only this collection (escaped as `list` prints it).
        #[arg(value_parser = unescape)]
        collection: Option<String>,
        /// Only this entity of the collection (escaped as `list` prints it).
        #[arg(value_parser = unescape)]
        entity: Option<String>,
    },
    /// Storage size, records and bytes per kind, compression, snapshot coverage.
    Stats,
    /// Re-encrypts every event, snapshot and table row with a new key (resumable).
    RotateKey {
        /// File holding the new key; else `RUSH_NEW_KEY`.
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<PathBuf>,
    },
    /// Deletes an entity's events up to a sequence number that a snapshot covers.
    DeleteTo {
        /// The collection (escaped as `list` prints it).
        #[arg(value_parser = unescape)]
        collection: String,
        /// The entity id (escaped as `list` prints it).
        #[arg(value_parser = unescape)]
        entity: String,
        /// Delete events 1..=SEQ.
        seq: u64,
    },
    /// Removes events left below deletion marks by interrupted deletions, and leftover
    /// health probes.
    Compact,
    /// Gives events written before format v2 (no collection-log entry) their offsets, so
    /// that queries and projections see them. Run once after upgrading, before projections
    /// start (resumable).
    Reindex,
    /// A copy of the database in DEST (a new folder), verified record by record before it
    /// is moved into place. The application may keep running: a copy that a write raced
    /// is taken again.
    Backup {
        /// The new folder.
        dest: PathBuf,
    },
    /// Copies every record (events, snapshots, tables, logs with their offsets) into TO
    /// on another engine, then compares both record by record. Resumable: after Ctrl-C or
    /// a crash, run the same command again.
    Migrate {
        /// The new database folder, or for `--engine postgres` the server's URL (the
        /// journal goes into the schema of `--schema`).
        to: PathBuf,
        /// The engine of the new database: sled, redb or postgres.
        #[arg(long)]
        engine: String,
    },
}
