//! The `rush` command-line inspector, as a library so that an application can build its
//! own with its event types: the shipped binary knows none, so it prints envelopes (and,
//! with a key, meta blocks); an inspector built with [`Cli::decode`] also prints each
//! event of the registered collections decoded, as JSON.
//!
//! ```no_run
//! use rush::PersistentActor;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Clone, Serialize, Deserialize)]
//! struct Account { balance: u64 }
//! impl PersistentActor for Account {
//!     type Event = u64;
//!     fn apply(&mut self, deposit: &u64) { self.balance += deposit; }
//! }
//!
//! // src/bin/inspect.rs of the application: `inspect ./data events accounts alice`
//! fn main() -> std::process::ExitCode {
//!     rush::cli::Cli::new().decode::<Account>("accounts").run(std::env::args_os())
//! }
//! ```
//!
//! Exit codes: 0 done (verify: clean); 1 the database has problems (verify found errors,
//! events found damaged records, reindex left damaged events out); 2 the command could not run (usage, missing folder, not
//! a database, database in use, wrong or unreadable key, a refused request, a storage
//! error); 130 interrupted by Ctrl-C (safe: every page is one atomic batch; run the
//! command again to finish).

mod args;
mod commands;
mod findings;
mod format;
mod keys;
mod maintain;
mod names;
mod progress;
mod transfer;

use args::{Args, Command};
use clap::{CommandFactory, FromArgMatches};
use rush_store::inspect::{Inspector, RawEvent};
use rush_store::{Error, Keyring, PersistentActor, engine_kind};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code: the database has problems.
const EXIT_PROBLEMS: u8 = 1;
/// Exit code: the command could not run.
const EXIT_FAILED: u8 = 2;
/// Exit code: stopped by Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// Turns a stored event into JSON, or says why it cannot.
type Decoder = Box<dyn Fn(&RawEvent) -> Result<serde_json::Value, String> + Send + Sync>;

/// The inspector's command line, with the event decoders of an application.
#[derive(Default)]
pub struct Cli {
    decoders: BTreeMap<String, Decoder>,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("decodes", &self.decoders.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Cli {
    /// A command line that decodes no event type (the shipped `rush` binary).
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the events of `collection` as `A::Event` (upcasting older schema versions
    /// with `A`'s upcasters, as recovery does) in the output of `events`.
    #[must_use]
    pub fn decode<A: PersistentActor>(mut self, collection: &str) -> Self {
        let decoder: Decoder = Box::new(|event: &RawEvent| {
            let decoded = event.decode::<A>().map_err(|e| e.to_string())?;
            serde_json::to_value(&decoded).map_err(|e| e.to_string())
        });
        self.decoders.insert(collection.to_owned(), decoder);
        self
    }

    /// Parses `args` (the program name first, as `std::env::args_os()` gives them), runs
    /// the command and returns its exit code (see the module docs). Errors are printed to
    /// stderr as one line.
    pub fn run<I, T>(&self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        self.run_with_output(args, &mut std::io::stdout().lock())
    }

    /// [`Cli::run`] writing the command's output to `out` instead of stdout (errors and
    /// progress still go to stderr): for tests, or to keep the output.
    pub fn run_with_output<I, T>(&self, args: I, out: &mut dyn Write) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let parsed = Args::command()
            .after_help(self.help())
            .try_get_matches_from(args)
            .and_then(|matches| Args::from_arg_matches(&matches));
        let args = match parsed {
            Ok(args) => args,
            Err(error) => {
                let _ = error.print();
                return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(EXIT_FAILED));
            }
        };
        match self.execute(args, out) {
            Ok(code) => ExitCode::from(code),
            Err(message) => {
                eprintln!("rush: error: {message}");
                ExitCode::from(EXIT_FAILED)
            }
        }
    }

    fn help(&self) -> String {
        let mut help = String::from(
            "Exit codes: 0 done (verify: clean), 1 problems found, 2 could not run, 130 interrupted.\n\
             Long commands show progress; Ctrl-C stops them between pages (each page is one atomic\n\
             batch): run the command again to finish.\n\n",
        );
        if self.decoders.is_empty() {
            help.push_str(
                "This build decodes no event types: `events` prints envelopes (and, with the key, the\n\
                 meta blocks). To print your events decoded, build your own inspector:\n\
                 rush::cli::Cli::new().decode::<MyActor>(\"collection\").run(std::env::args_os())",
            );
        } else {
            let names: Vec<String> = self.decoders.keys().map(|n| names::escaped(n)).collect();
            help.push_str(&format!("Decodes the events of: {}", names.join(", ")));
        }
        help
    }

    fn execute(&self, args: Args, out: &mut dyn Write) -> Result<u8, String> {
        let keys = keys::load(&args)?;
        let interrupt = progress::Interrupt::install();
        if args.postgres_url().is_some()
            && matches!(
                args.command,
                Command::Backup { .. } | Command::Migrate { .. }
            )
        {
            return Err(
                "backup and migrate read a folder; back a PostgreSQL journal up with the \
                 server's own tools (pg_dump --schema, or its continuous archiving)"
                    .into(),
            );
        }
        let transfer = match &args.command {
            Command::Backup { dest } => Some(transfer::backup(
                &args.folder,
                dest,
                &keys.keyring,
                &interrupt,
                out,
            )),
            Command::Migrate { to, engine } => Some(transfer::migrate(
                &args.folder,
                to,
                engine,
                &args.schema,
                &interrupt,
                out,
            )),
            _ => None,
        };
        if let Some(result) = transfer {
            return finish(result);
        }
        // Read-only commands look at a copy: the engine may rewrite files when it opens
        // them (sled always does), and a look must not change what it looks at.
        let read_only = matches!(
            args.command,
            Command::List | Command::Events { .. } | Command::Verify { .. } | Command::Stats
        );
        let (inspector, _copy) = open(&args, &keys.keyring, read_only)?;
        let mut context = commands::Context {
            inspector,
            interrupt,
            decoders: &self.decoders,
            out,
        };
        let result = match args.command {
            Command::List => context.list(),
            Command::Events {
                collection,
                entity,
                from,
            } => context.events(&collection, &entity, from),
            Command::Verify { collection, entity } => {
                context.verify(collection.as_deref(), entity.as_deref())
            }
            Command::Stats => context.stats(),
            Command::RotateKey { .. } => context.rotate_key(keys.new_key.as_ref()),
            Command::DeleteTo {
                collection,
                entity,
                seq,
            } => context.delete_to(&collection, &entity, seq),
            Command::Compact => context.compact(),
            Command::Reindex => context.reindex(),
            Command::Backup { .. } | Command::Migrate { .. } => Ok(0),
        };
        finish(result)
    }
}

/// The exit code of a command's outcome, or the line that says why it failed.
fn finish(result: commands::Outcome) -> Result<u8, String> {
    match result {
        Err(commands::Failure::Store(error)) => Err(describe(&error)),
        Err(commands::Failure::Other(message)) => Err(message),
        Err(commands::Failure::ClosedOutput) => Ok(0),
        Ok(code) => Ok(code),
    }
}

/// A tool's reads need no large cache; its writes are synced like the application's.
const TOOL_CACHE: u64 = 64 * 1024 * 1024;

/// Opens the existing database with the keys of the command line: a copy of it for a
/// read-only command (kept alive by the second value), the folder itself otherwise.
fn open(
    args: &Args,
    keyring: &Keyring,
    read_only: bool,
) -> Result<(Inspector, Option<engine_kind::Copy>), String> {
    let (engine, copy) = if let Some(url) = args.postgres_url() {
        // A server's journal is read where it is: reads change nothing there.
        let mut config = rush_store::PostgresConfig::new(url, &args.schema);
        config.create = false;
        let engine = rush_store::PostgresManager::open(config).map_err(|e| describe(&e))?;
        let engine: Arc<dyn rush_store::Backend> = Arc::new(engine);
        (engine, None)
    } else if read_only {
        let copy = engine_kind::open_copy(&args.folder, &std::env::temp_dir(), TOOL_CACHE)
            .map_err(|e| describe(&e))?;
        eprintln!(
            "rush: looking at a copy of {} ({} bytes, {}); the database itself is not opened",
            args.folder.display(),
            copy.bytes,
            copy.kind.name()
        );
        (Arc::clone(&copy.engine), Some(copy))
    } else {
        let (_, engine) =
            engine_kind::open_existing(&args.folder, TOOL_CACHE).map_err(|e| describe(&e))?;
        (engine, None)
    };
    let inspector = Inspector::with_keyring(engine, keyring);
    inspector.check_key().map_err(|e| describe(&e))?;
    Ok((inspector, copy))
}

/// One line saying what went wrong and what to do about it.
fn describe(error: &Error) -> String {
    match error {
        Error::DatabaseLocked { .. } => format!(
            "{error} (the engine lets one process at a time open a database: stop the application using it and retry; `backup` works while it runs)"
        ),
        Error::Decryption { .. } => format!(
            "{error}; give the key that sealed it with --key-file or RUSH_KEY (and, during an unfinished rotation, the other with --old-key-file)"
        ),
        other => other.to_string(),
    }
}
