//! A sled folder held by another process (a second server on the same folder) is refused
//! with `DatabaseLocked` at once: `SledManager::new` used to retry for up to 2 s first,
//! inside `#[tokio::main]` as well, blocking a runtime worker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rush_store::{Error, SledManager};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether another process holds the lock on `file` (`flock -n` fails when it does).
fn held_elsewhere(file: &std::path::Path) -> bool {
    Command::new("flock")
        .arg("-n")
        .arg(file)
        .arg("true")
        .status()
        .is_ok_and(|status| !status.success())
}

#[test]
fn a_folder_locked_by_another_process_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    drop(SledManager::new(dir.path()).unwrap());
    let lock_file = dir.path().join("db");
    // Hold sled's lock (an flock on `<dir>/db`) from another process; `--no-fork` makes
    // that process the one killed below.
    let Ok(mut holder) = Command::new("flock")
        .arg("--no-fork")
        .arg(&lock_file)
        .args(["sleep", "60"])
        .stdout(Stdio::null())
        .spawn()
    else {
        eprintln!("skipped: no `flock` command on this machine");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !held_elsewhere(&lock_file) {
        assert!(
            Instant::now() < deadline,
            "the other process never took the lock"
        );
        std::thread::yield_now();
    }

    let started = Instant::now();
    let outcome = SledManager::new(dir.path());
    let took = started.elapsed();
    holder.kill().unwrap();
    holder.wait().unwrap();

    assert!(
        matches!(&outcome, Err(Error::DatabaseLocked { path }) if path == dir.path()),
        "{:?}",
        outcome.map(|_| ())
    );
    // No retry loop: refused in far less than the 2 s the old loop waited.
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    // Once the other process is gone the folder opens again.
    drop(SledManager::new(dir.path()).unwrap());
}
