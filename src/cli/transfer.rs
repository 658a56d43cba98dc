//! The commands that copy a database: `backup` (a verified copy, while the application
//! may run) and `migrate` (every record to another engine, verified, resumable).

use super::EXIT_PROBLEMS;
use super::commands::{Failure, Outcome, interrupted};
use super::format::bytes;
use super::progress::{Bar, Interrupt};
use rush_store::engine_kind::{EngineKind, copy_files};
use rush_store::engine_kit::MARK_FILE;
use rush_store::inspect::transfer::{CopyReport, compare_records, copy_records};
use rush_store::inspect::{Inspector, Scope};
use rush_store::{Backend, Keyring};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Copies taken of a database in use before giving up (a write can race a copy).
const BACKUP_ATTEMPTS: u32 = 3;
/// A page cache big enough for a tool.
const TOOL_CACHE: u64 = 64 * 1024 * 1024;
/// In a destination folder while a migration into it is unfinished.
const MIGRATING: &str = "rush-migrating";

fn is_empty_or_missing(folder: &Path) -> Result<bool, Failure> {
    match std::fs::read_dir(folder) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Failure::Other(format!(
            "cannot read {}: {e}",
            folder.display()
        ))),
    }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::Other(format!("{what}: {e}"))
}

/// Copies the database in `folder` to the new folder `dest`: its files (the commit mark
/// first), then the copy opened as after a crash and every record verified, then renamed
/// into place. A database in use is copied again if its copy does not verify.
pub(crate) fn backup(
    folder: &Path,
    dest: &Path,
    keyring: &Keyring,
    interrupt: &Interrupt,
    out: &mut dyn Write,
) -> Outcome {
    let kind = EngineKind::detect(folder)?;
    if !is_empty_or_missing(dest)? {
        return Err(Failure::Other(format!(
            "{} exists and is not empty: give a new folder",
            dest.display()
        )));
    }
    let partial = PathBuf::from(format!("{}.partial", dest.display()));
    let mut last_problem = String::new();
    for attempt in 1..=BACKUP_ATTEMPTS {
        let running = kind.in_use(folder);
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(io("remove an old partial copy"))?;
        }
        std::fs::create_dir_all(&partial).map_err(io("create the copy's folder"))?;
        // The mark first: it then counts no commit the engine's files copied after it
        // lack, so the copy's own check holds for a database being written.
        let mark = match std::fs::read(folder.join(MARK_FILE)) {
            Ok(mark) => Some(mark),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Failure::Other(format!("read the commit mark: {e}"))),
        };
        let copied = copy_files(folder, &partial)?;
        if let Some(mark) = mark {
            std::fs::write(partial.join(MARK_FILE), mark).map_err(io("copy the commit mark"))?;
        }
        let verified = (|| -> rush_store::Result<rush_store::inspect::VerifyReport> {
            let engine = kind.open(&partial, TOOL_CACHE)?;
            let inspector = Inspector::with_keyring(engine.clone(), keyring);
            let bar = Bar::new("verifying the copy", interrupt);
            let report = inspector.verify(&Scope::All, &mut |n| bar.advance(n));
            bar.finish();
            engine.flush()?;
            report
        })();
        match verified {
            Ok(report) if report.interrupted => {
                let _ = std::fs::remove_dir_all(&partial);
                return Ok(interrupted("backup not taken; run the command again"));
            }
            Ok(report) if report.is_ok() => {
                std::fs::rename(&partial, dest).map_err(io("move the copy into place"))?;
                writeln!(
                    out,
                    "backup of {} ({}, {}) in {}: {} events, {} snapshots, {} table rows verified{}",
                    folder.display(),
                    kind.name(),
                    bytes(copied),
                    dest.display(),
                    report.events_checked,
                    report.snapshots_checked,
                    report.table_rows_checked,
                    if running {
                        "; taken while the database was in use"
                    } else {
                        ""
                    }
                )?;
                return Ok(0);
            }
            Ok(report) => {
                last_problem = report.error_summary();
            }
            Err(error) => last_problem = error.to_string(),
        }
        if !running {
            break;
        }
        eprintln!(
            "rush: copy {attempt} did not verify ({last_problem}); a write raced it, copying again"
        );
    }
    let _ = std::fs::remove_dir_all(&partial);
    writeln!(
        out,
        "no backup taken: the copy did not verify: {last_problem}"
    )?;
    Ok(EXIT_PROBLEMS)
}

/// Copies every record of the database in `folder` into `to` on `engine`, then compares
/// both record by record. Interrupted (Ctrl-C, a crash), it goes on where it stopped.
pub(crate) fn migrate(
    folder: &Path,
    to: &Path,
    engine: &str,
    schema: &str,
    interrupt: &Interrupt,
    out: &mut dyn Write,
) -> Outcome {
    let to_url = to
        .to_str()
        .filter(|to| to.starts_with("postgres://") || to.starts_with("postgresql://"));
    match (engine, to_url) {
        ("postgres", Some(url)) => return migrate_to_postgres(folder, url, schema, interrupt, out),
        ("postgres", None) => {
            return Err(Failure::Other(
                "--engine postgres moves the journal to a server: give its URL (postgres://user@host/db) and --schema".into(),
            ));
        }
        (_, Some(_)) => {
            return Err(Failure::Other(
                "a PostgreSQL URL as the destination needs --engine postgres".into(),
            ));
        }
        _ => {}
    }
    let target = EngineKind::from_name(engine)?;
    let (source_kind, source) = rush_store::engine_kind::open_existing(folder, TOOL_CACHE)?;
    let marker = to.join(MIGRATING);
    let resuming = marker.exists();
    if !resuming {
        if !is_empty_or_missing(to)? {
            return Err(Failure::Other(format!(
                "{} exists and holds something other than an unfinished migration: give a new folder",
                to.display()
            )));
        }
        std::fs::create_dir_all(to).map_err(io("create the destination"))?;
        std::fs::write(&marker, engine).map_err(io("mark the migration as unfinished"))?;
    } else {
        let recorded = std::fs::read_to_string(&marker).map_err(io("read the migration's mark"))?;
        if recorded.trim() != engine {
            return Err(Failure::Other(format!(
                "{} holds an unfinished migration to {}, not {engine}",
                to.display(),
                recorded.trim()
            )));
        }
    }
    let destination = target.open(to, TOOL_CACHE)?;
    let label = format!("copying {} -> {}", source_kind.name(), target.name());
    let (copied, compared) =
        match copy_and_compare(source.as_ref(), destination.as_ref(), &label, interrupt)? {
            Ok(done) => done,
            Err(stopped) => return Ok(stopped),
        };
    std::fs::remove_file(&marker).map_err(io("mark the migration as finished"))?;
    writeln!(
        out,
        "migrated {} ({}) to {} ({}): {} records ({} copied now, {} by an earlier run, {}), all {} identical",
        folder.display(),
        source_kind.name(),
        to.display(),
        target.name(),
        copied.already_there + copied.copied,
        copied.copied,
        copied.already_there,
        bytes(copied.bytes),
        compared
    )?;
    Ok(0)
}

/// Copies every record of `source` into `destination` (resuming after its last one),
/// compares both, and flushes the destination, with progress bars: the copy report and the
/// records compared, or (`Err`) the exit code of an interrupted run.
fn copy_and_compare(
    source: &dyn Backend,
    destination: &dyn Backend,
    label: &str,
    interrupt: &Interrupt,
) -> Result<Result<(CopyReport, u64), u8>, Failure> {
    let bar = Bar::new(label, interrupt);
    let copied = copy_records(source, destination, &mut |n| bar.advance(n));
    bar.finish();
    let copied = copied?;
    if copied.interrupted {
        return Ok(Err(interrupted(
            "migration unfinished; run the same command again to go on",
        )));
    }
    let bar = Bar::new("comparing record by record", interrupt);
    let compared = compare_records(source, destination, &mut |n| bar.advance(n));
    bar.finish();
    let compared = compared?;
    if interrupt.is_set() {
        return Ok(Err(interrupted(
            "comparison unfinished; run the same command again",
        )));
    }
    destination.flush()?;
    Ok(Ok((copied, compared)))
}

/// `migrate` into a PostgreSQL schema: every record of the folder copied as stored, then
/// compared. No mark is needed to resume: the copy goes on after the destination's last
/// record only if that record is the source's, and the comparison covers everything.
fn migrate_to_postgres(
    folder: &Path,
    url: &str,
    schema: &str,
    interrupt: &Interrupt,
    out: &mut dyn Write,
) -> Outcome {
    let (source_kind, source) = rush_store::engine_kind::open_existing(folder, TOOL_CACHE)?;
    let config = rush_store::PostgresConfig::new(url, schema);
    let place = config.describe();
    let destination = rush_store::PostgresManager::open(config)?;
    let label = format!("copying {} -> postgres", source_kind.name());
    let (copied, compared) =
        match copy_and_compare(source.as_ref(), &destination, &label, interrupt)? {
            Ok(done) => done,
            Err(stopped) => return Ok(stopped),
        };
    writeln!(
        out,
        "migrated {} ({}) to {place}: {} records ({} copied now, {} by an earlier run, {}), all {} identical",
        folder.display(),
        source_kind.name(),
        copied.already_there + copied.copied,
        copied.copied,
        copied.already_there,
        bytes(copied.bytes),
        compared
    )?;
    Ok(0)
}
