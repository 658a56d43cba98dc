//! The commands that look at or copy a database, as processes: read-only commands change
//! no byte of it (on either engine); `backup` takes a verified copy, also while another
//! process writes; `migrate` moves every record to the other engine, survives a SIGKILL
//! midway and finishes on a rerun.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/cli.rs"]
mod support;

use rush::Store;
use rush::store::{Backend, RedbManager, SledManager};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Account, Event, KEY, create, rush};

/// Every file under `folder` with its bytes.
fn snapshot(folder: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                files.insert(entry.path(), std::fs::read(entry.path()).unwrap());
            }
        }
    }
    files
}

/// A redb database like `support::create`'s: alice with three events, bob with one.
fn create_redb(folder: &Path) {
    let engine: Arc<dyn Backend> = Arc::new(RedbManager::new(folder).unwrap());
    let mut alice =
        Store::<Account>::new("accounts", "alice", engine.clone(), Some(&KEY), true).unwrap();
    alice
        .persist_batch(&[
            Event::Deposited(5),
            Event::Deposited(6),
            Event::Withdrawn(1),
        ])
        .unwrap();
    let mut bob = Store::<Account>::new("accounts", "bob", engine, Some(&KEY), true).unwrap();
    bob.persist(&Event::Deposited(7)).unwrap();
}

/// A sled database big enough for a copy to take a moment: 40 accounts of 1,000 events.
fn forty_accounts(folder: &Path) {
    {
        let engine: Arc<dyn Backend> = Arc::new(SledManager::new(folder).unwrap());
        for entity in 0..40 {
            let mut store = Store::<Account>::new(
                "accounts",
                &format!("e{entity}"),
                engine.clone(),
                Some(&KEY),
                true,
            )
            .unwrap();
            for _ in 0..20 {
                let batch: Vec<Event> = (0..50).map(Event::Deposited).collect();
                store.persist_batch(&batch).unwrap();
            }
        }
    }
    support::release(folder);
}

fn key_env() -> Vec<(&'static str, String)> {
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    vec![("RUSH_KEY", hex)]
}

#[test]
fn read_only_commands_change_no_byte_of_either_engine() {
    let sled = create(Some(&KEY));
    let redb_dir = tempfile::tempdir().unwrap();
    let redb = redb_dir.path().join("db");
    create_redb(&redb);
    for folder in [sled.path.as_path(), redb.as_path()] {
        let before = snapshot(folder);
        for args in [
            &["list"][..],
            &["stats"],
            &["verify"],
            &["events", "accounts", "alice"],
        ] {
            let run = rush(folder, args, &key_env());
            assert_eq!(run.code, 0, "{args:?} on {}: {run:?}", folder.display());
            let note = run.copy_note.as_deref().unwrap_or_default();
            assert!(
                note.contains("the database itself is not opened"),
                "{run:?}"
            );
        }
        assert!(before == snapshot(folder), "{} changed", folder.display());
    }
}

#[test]
fn a_backup_is_verified_and_reads_like_the_original() {
    let db = create(Some(&KEY));
    let dest = db.path.with_file_name("backup");
    let run = rush(&db.path, &["backup", dest.to_str().unwrap()], &key_env());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("verified"), "{run:?}");
    let original = rush(&db.path, &["events", "accounts", "alice"], &key_env());
    let copy = rush(&dest, &["events", "accounts", "alice"], &key_env());
    assert_eq!(original.stdout, copy.stdout);
    // A second backup into the same folder is refused: nothing is overwritten.
    let again = rush(&db.path, &["backup", dest.to_str().unwrap()], &key_env());
    assert_eq!(again.code, 2, "{again:?}");
}

/// Not a test on its own: the child of `a_backup_taken_while_another_process_writes_verifies`,
/// which writes to the database until it is killed, printing what was acknowledged.
#[test]
fn write_until_killed_for_another_test() {
    let Ok(path) = std::env::var("RUSH_CLI_TEST_WRITE") else {
        return;
    };
    let engine = SledManager::new(&path).unwrap();
    let mut store = Store::<Account>::new("accounts", "writer", engine, Some(&KEY), true).unwrap();
    for n in 1.. {
        store.persist(&Event::Deposited(n)).unwrap();
        println!("acked {n}");
    }
}

#[test]
fn a_backup_taken_while_another_process_writes_verifies() {
    let db = create(Some(&KEY));
    let mut writer = Command::new(std::env::current_exe().unwrap())
        .args([
            "write_until_killed_for_another_test",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RUSH_CLI_TEST_WRITE", &db.path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    let acked_before = lines
        .by_ref()
        .filter_map(|l| l.ok()?.strip_prefix("acked ")?.parse::<u64>().ok())
        .find(|&n| n >= 200)
        .expect("the writer acknowledged events");
    let dest = db.path.with_file_name("live-backup");
    let run = rush(&db.path, &["backup", dest.to_str().unwrap()], &key_env());
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("while the database was in use"),
        "{run:?}"
    );
    let verify = rush(&dest, &["verify"], &key_env());
    assert_eq!(verify.code, 0, "{verify:?}");
    let events = rush(&dest, &["events", "accounts", "writer"], &key_env());
    assert!(
        events.stdout.lines().count() as u64 >= acked_before,
        "{events:?}"
    );
}

#[test]
fn a_migration_killed_midway_finishes_on_a_rerun_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("sled");
    forty_accounts(&source);
    let target = dir.path().join("redb");
    let mut first = Command::new(env!("CARGO_BIN_EXE_rush"))
        .arg(&source)
        .args(["migrate", target.to_str().unwrap(), "--engine", "redb"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the copy is under way: its mark is there and its file grew.
    let started = Instant::now();
    while !(target.join("rush-migrating").exists()
        && std::fs::metadata(target.join("rush.redb")).is_ok_and(|m| m.len() > 2 * 1024 * 1024))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the migration never started"
        );
        if first.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = first.kill();
    first.wait().unwrap();
    let killed_midway = target.join("rush-migrating").exists();

    let rerun = rush(
        &source,
        &["migrate", target.to_str().unwrap(), "--engine", "redb"],
        &[],
    );
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(rerun.stdout.contains("identical"), "{rerun:?}");
    if killed_midway {
        assert!(!rerun.stdout.contains(", 0 by an earlier run"), "{rerun:?}");
    } else {
        eprintln!("note: the first run finished before the kill");
    }
    assert!(!target.join("rush-migrating").exists());
    // The new database reads as the old one did.
    for args in [&["list"][..], &["events", "accounts", "e7"]] {
        let old = rush(&source, args, &key_env());
        let new = rush(&target, args, &key_env());
        assert_eq!((old.code, &old.stdout), (new.code, &new.stdout), "{args:?}");
    }
    let verify = rush(&target, &["verify"], &key_env());
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn a_backup_killed_midway_leaves_no_backup_and_a_rerun_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("db");
    forty_accounts(&source);
    let dest = dir.path().join("backup");
    let partial = dir.path().join("backup.partial");
    let mut first = Command::new(env!("CARGO_BIN_EXE_rush"))
        .arg(&source)
        .args(["backup", dest.to_str().unwrap()])
        .envs(key_env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !partial.exists() && first.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the backup never started"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = first.kill();
    first.wait().unwrap();
    if partial.exists() {
        // Killed while copying or verifying: nothing at the destination.
        assert!(!dest.exists(), "a half-taken backup is at the destination");
    } else {
        eprintln!("note: the first run finished before the kill");
    }
    if !dest.exists() {
        let rerun = rush(&source, &["backup", dest.to_str().unwrap()], &key_env());
        assert_eq!(rerun.code, 0, "{rerun:?}");
    }
    assert!(!partial.exists());
    let verify = rush(&dest, &["verify"], &key_env());
    assert_eq!(verify.code, 0, "{verify:?}");
    let (old, new) = (
        rush(&source, &["list"], &key_env()),
        rush(&dest, &["list"], &key_env()),
    );
    assert_eq!(old.stdout, new.stdout);
}
