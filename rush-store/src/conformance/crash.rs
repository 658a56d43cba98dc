//! Durability across a reopen and across a `SIGKILL`: what `flush` returned for survives.

use super::contract::{put, read_log};
use super::{EngineUnderTest, Outcome, Report, Violation, engine, ensure, scratch};
use crate::backend::{Backend, LogAppend, WriteBatch};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Set in the child process of [`check_sigkill`] to the folder it writes to.
pub const CHILD_FOLDER_VAR: &str = "RUSH_CONFORMANCE_CHILD";
/// Entries the child must have acknowledged before it is killed.
const ACKED_BEFORE_KILL: u64 = 200;
const LOG: &[u8] = b"\x05\x00\x05crash";

pub(crate) fn key(i: u64) -> Vec<u8> {
    format!("acked-{i:010}").into_bytes()
}

pub(crate) fn write_one(db: &dyn Backend, i: u64) -> crate::Result<()> {
    let batch = WriteBatch {
        ops: vec![put(&key(i), &i.to_be_bytes())],
        appends: vec![LogAppend {
            log: LOG.to_vec(),
            value: i.to_be_bytes().to_vec(),
        }],
        ..WriteBatch::default()
    };
    db.commit(&batch)?
        .map_err(|failed| crate::Error::storage("commit", format!("{failed:?}")))
}

/// Checks that entries `0..count` are all there, and the log holds them in order.
fn check_written(check: &'static str, db: &dyn Backend, count: u64) -> Outcome<u64> {
    for i in 0..count {
        let value = engine(check, db.get(&key(i)))?;
        ensure(
            value.as_deref() == Some(&i.to_be_bytes()[..]),
            check,
            || format!("acknowledged entry {i} of {count} reads back as {value:?}"),
        )?;
    }
    let log = read_log(check, db, LOG)?;
    ensure(log.len() as u64 >= count, check, || {
        format!(
            "the log holds {} entries, {count} were acknowledged",
            log.len()
        )
    })?;
    for (i, entry) in log.iter().enumerate() {
        ensure(entry.as_slice() == (i as u64).to_be_bytes(), check, || {
            format!("log entry {} holds {entry:?}", i + 1)
        })?;
    }
    Ok(log.len() as u64)
}

/// Commits and flushes, drops every handle, reopens: everything is there, and the log's
/// offsets go on where they stopped.
///
/// # Errors
///
/// A [`Violation`] naming the rule broken; an engine error where none was expected is a
/// [`Violation`] too, with the error in its detail.
pub fn check_reopen(engine_: &EngineUnderTest, report: &mut Report) -> Outcome {
    const CHECK: &str = "reopen";
    let dir = scratch(CHECK)?;
    let open = || engine(CHECK, engine_.open.as_ref()(dir.path()));
    {
        let db = open()?;
        for i in 0..50 {
            engine(CHECK, write_one(db.as_ref(), i))?;
        }
        engine(CHECK, db.flush())?;
    }
    let db = open()?;
    check_written(CHECK, db.as_ref(), 50)?;
    engine(CHECK, write_one(db.as_ref(), 50))?;
    engine(CHECK, db.flush())?;
    check_written(CHECK, db.as_ref(), 51)?;
    report.lines.push((
        CHECK,
        "50 flushed commits kept; the log went on at 51".into(),
    ));
    Ok(())
}

/// In the child process of [`check_sigkill`] (the environment names a folder): opens the
/// engine there, commits and flushes one entry at a time, printing `acked <n>` after each
/// flush, until it is killed. Otherwise returns at once.
pub fn play_child_if_asked(engine_: &EngineUnderTest) {
    let Some(folder) = std::env::var_os(CHILD_FOLDER_VAR) else {
        return;
    };
    let outcome = (|| -> crate::Result<()> {
        let db = engine_.open.as_ref()(Path::new(&folder))?;
        let mut stdout = std::io::stdout();
        for i in 0.. {
            write_one(db.as_ref(), i)?;
            db.flush()?;
            writeln!(stdout, "acked {i}")
                .and_then(|()| stdout.flush())
                .map_err(|e| crate::Error::from_io("report", &e))?;
        }
        Ok(())
    })();
    let code = match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("conformance child: {e}");
            2
        }
    };
    std::process::exit(code);
}

/// Runs the calling test again as a child process that commits and flushes until it is
/// killed with `SIGKILL`; every entry it acknowledged must be there after a reopen.
///
/// # Errors
///
/// A [`Violation`] naming the rule broken; an engine error where none was expected is a
/// [`Violation`] too, with the error in its detail. So is a child process that cannot be
/// started or acknowledges nothing.
pub fn check_sigkill(engine_: &EngineUnderTest, report: &mut Report) -> Outcome {
    const CHECK: &str = "sigkill";
    let violation = |detail: String| Violation {
        check: CHECK,
        detail,
    };
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(str::to_owned)
        .ok_or_else(|| {
            violation(
                "run conformance::check from a #[test] (libtest names the thread after it)".into(),
            )
        })?;
    let exe = std::env::current_exe().map_err(|e| violation(format!("no test binary: {e}")))?;
    let dir = scratch(CHECK)?;
    let mut child = Command::new(exe)
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_FOLDER_VAR, dir.path())
        .envs(engine_.child_env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| violation(format!("cannot start the child: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| violation("the child has no stdout".into()))?;
    let (lines, acks) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if let Some(n) = line
                .strip_prefix("acked ")
                .and_then(|n| n.parse::<u64>().ok())
                && lines.send(n).is_err()
            {
                break;
            }
        }
    });
    let mut acked = None;
    while acked.is_none_or(|n| n < ACKED_BEFORE_KILL) {
        match acks.recv_timeout(Duration::from_secs(120)) {
            Ok(n) => acked = Some(n),
            Err(_) => break,
        }
    }
    // Child::kill sends SIGKILL: no destructor, no flush runs in the child.
    let _ = child.kill();
    let _ = child.wait();
    // Anything the child printed before it died counts.
    let _ = reader.join();
    while let Ok(n) = acks.try_recv() {
        acked = Some(n);
    }
    let acked = acked.ok_or_else(|| violation("the child acknowledged nothing".into()))?;
    let db = engine(CHECK, engine_.open.as_ref()(dir.path()))?;
    let count = acked + 1;
    let kept = check_written(CHECK, db.as_ref(), count)?;
    report.lines.push((
        CHECK,
        format!("killed after {count} acknowledged commits; all there, the log holds {kept}"),
    ));
    Ok(())
}
