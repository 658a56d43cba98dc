//! The engine contract as one call (feature `conformance`): any [`Backend`], in this crate
//! or another, runs [`check`] from one of its tests and gets every rule of the contract
//! checked the same way.
//!
//! ```no_run
//! # use rush_store::{Backend, SledManager};
//! # use std::sync::Arc;
//! use rush_store::conformance::{self, EngineUnderTest};
//!
//! #[test]
//! fn sled_keeps_the_engine_contract() {
//!     let engine = EngineUnderTest::on_disk("sled", |folder| {
//!         Ok(Arc::new(SledManager::new(folder)?) as Arc<dyn Backend>)
//!     });
//!     let report = conformance::check(&engine).unwrap_or_else(|v| panic!("{v}"));
//!     eprintln!("{report}");
//! }
//! ```
//!
//! What is checked ([`check`] runs all of it):
//! - [`contract`]: atomic guarded batches, byte-ordered and reverse scans, reserved keys,
//!   gap-free log offsets in commit order under committers on several threads;
//! - for engines on disk, [`crash`]: data flushed before a `SIGKILL` of a child process
//!   survives, and so do log offsets; a clean reopen keeps everything;
//! - for engines on disk, [`damage`]: every file of the database damaged in many ways,
//!   after a clean and after an unclean shutdown, ends with all acknowledged data intact
//!   or a typed [`Error::Corrupted`](crate::Error::Corrupted), never a panic and never a
//!   silent rollback.
//!
//! The crash check runs the calling test again as a child process (the test binary, the
//! test's name, `--exact`): [`check`] must be the first thing that test does.

pub mod contract;
pub mod crash;
pub mod damage;

use crate::backend::Backend;
use crate::error::Result;
use std::path::Path;
use std::sync::Arc;

/// Opens the engine on a folder (created if missing; the same folder again reopens it).
pub type Opener = dyn Fn(&Path) -> Result<Arc<dyn Backend>> + Send + Sync;

/// An engine to check: a name for reports and how to open it.
pub struct EngineUnderTest {
    /// Shown in reports.
    pub name: &'static str,
    /// Opens the engine on a folder.
    pub open: Box<Opener>,
    /// Whether data outlives its handles (reopen and crash checks apply).
    pub on_disk: bool,
    /// Whether data lives in files in the folder (the damage matrix applies).
    pub has_files: bool,
    /// Environment variables the child process of the crash check gets (for example,
    /// where a server engine's server is).
    pub child_env: Vec<(String, String)>,
}

impl EngineUnderTest {
    /// An engine that keeps its data in the folder it is opened on.
    pub fn on_disk(
        name: &'static str,
        open: impl Fn(&Path) -> Result<Arc<dyn Backend>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            open: Box::new(open),
            on_disk: true,
            has_files: true,
            child_env: Vec::new(),
        }
    }

    /// An engine whose data lives on a server: it outlives its handles and a killed
    /// process, but has no files here to damage. The opener maps each folder to a database
    /// of its own (the folder's name is unique).
    pub fn on_server(
        name: &'static str,
        open: impl Fn(&Path) -> Result<Arc<dyn Backend>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            open: Box::new(open),
            on_disk: true,
            has_files: false,
            child_env: Vec::new(),
        }
    }

    /// Sets `name` = `value` in the crash check's child process.
    #[must_use]
    pub fn with_child_env(mut self, name: &str, value: &str) -> Self {
        self.child_env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// An engine whose data lives only as long as its handles (the folder is ignored).
    pub fn in_memory(
        name: &'static str,
        open: impl Fn(&Path) -> Result<Arc<dyn Backend>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            open: Box::new(open),
            on_disk: false,
            has_files: false,
            child_env: Vec::new(),
        }
    }
}

/// A rule the engine broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The check that failed.
    pub check: &'static str,
    /// What happened instead.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

impl std::error::Error for Violation {}

/// What the checks saw: one line per check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `(check, what it saw)`.
    pub lines: Vec<(&'static str, String)>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (check, line) in &self.lines {
            writeln!(f, "{check}: {line}")?;
        }
        Ok(())
    }
}

/// The result of one check.
pub type Outcome<T = ()> = std::result::Result<T, Violation>;

/// Fails `check` with `detail` unless `holds`.
pub(crate) fn ensure(holds: bool, check: &'static str, detail: impl FnOnce() -> String) -> Outcome {
    if holds {
        Ok(())
    } else {
        Err(Violation {
            check,
            detail: detail(),
        })
    }
}

/// An engine error where none was expected, as a violation of `check`.
pub(crate) fn engine<T>(check: &'static str, result: Result<T>) -> Outcome<T> {
    result.map_err(|e| Violation {
        check,
        detail: format!("the engine failed: {e}"),
    })
}

/// A folder for one check, removed afterwards.
pub(crate) fn scratch(check: &'static str) -> Outcome<tempfile::TempDir> {
    tempfile::tempdir().map_err(|e| Violation {
        check,
        detail: format!("cannot create a temporary folder: {e}"),
    })
}

/// Runs every check that applies to `engine`. In the child process of the crash check it
/// plays the child and never returns.
///
/// # Errors
///
/// The first [`Violation`] of any check: the rule broken, or an engine error where none was
/// expected (in its detail). A folder that cannot be created is one as well.
pub fn check(engine: &EngineUnderTest) -> Outcome<Report> {
    crash::play_child_if_asked(engine);
    let mut report = Report::default();
    contract::check_all(engine, &mut report)?;
    if engine.on_disk {
        crash::check_reopen(engine, &mut report)?;
        crash::check_sigkill(engine, &mut report)?;
    }
    if engine.has_files {
        damage::check_matrix(engine, &mut report)?;
    }
    Ok(report)
}
