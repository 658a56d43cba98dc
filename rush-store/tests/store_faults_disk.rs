//! A really full disk: the engine under test (sled unless `RUSH_TEST_ENGINE=redb`) on a
//! 4 MiB tmpfs. Needs root (to mount); elsewhere the test
//! prints why it is skipped, and `store_faults.rs` covers the same path with an injected
//! ENOSPC error. The store must report the engine's error, keep every acknowledged event,
//! and work again (on a new handle, after a reopen) once space is freed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/engine_under_test.rs"]
mod engine_under_test;

use rush_store::{Error, PersistentActor, RedbConfig, RedbManager, SledConfig, SledManager, Store};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Blob(u64, Vec<u8>);

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Count(u64);

impl PersistentActor for Count {
    type Event = Blob;
    fn apply(&mut self, _: &Blob) {
        self.0 += 1;
    }
}

/// Incompressible (and encrypted anyway) 1 KiB payloads, so the disk fills fast.
fn blob(seq: u64) -> Blob {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let bytes = (0..1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    Blob(seq, bytes)
}

/// A tmpfs mount that is unmounted on drop (before its folder is removed).
struct Mount {
    path: PathBuf,
    _folder: tempfile::TempDir,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn mount_tmpfs(size: &str) -> Result<Mount, String> {
    // Root check through `id -u`: the workspace forbids unsafe code, so no geteuid().
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("cannot run id: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not running as root (mounting a tmpfs needs it)".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("mnt");
    std::fs::create_dir(&path).map_err(|e| e.to_string())?;
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&path)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mount -t tmpfs failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Mount { path, _folder: dir })
}

const KEY: [u8; 32] = [3; 32];

fn open(dir: &Path) -> rush_store::Result<Store<Count>> {
    // A small cache keeps sled's memory use (not the disk) out of the picture.
    let config = SledConfig {
        cache_capacity: 1024 * 1024,
        ..SledConfig::default()
    };
    let engine: std::sync::Arc<dyn rush_store::Backend> = match engine_under_test::chosen() {
        Some("redb") => std::sync::Arc::new(RedbManager::with_config(
            dir,
            RedbConfig {
                cache_capacity: 1024 * 1024,
                ..RedbConfig::default()
            },
        )?),
        Some("sled") => std::sync::Arc::new(SledManager::with_config(
            dir,
            SledConfig {
                write_ahead_log: false,
                ..config
            },
        )?),
        _ => std::sync::Arc::new(SledManager::with_config(dir, config)?),
    };
    Store::new("full", "e", engine, Some(&KEY), false)
}

#[test]
fn a_really_full_disk_is_reported_keeps_acknowledged_events_and_recovers_when_space_is_freed() {
    let mount = match mount_tmpfs("4m") {
        Ok(mount) => mount,
        Err(reason) => {
            println!("skipped: {reason}; store_faults.rs injects the same error instead");
            return;
        }
    };
    let db = mount.path.join("db");
    // Room to free later: the fault "clears" when this file goes.
    let ballast = mount.path.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1024 * 1024]).unwrap();

    let mut store = open(&db).unwrap();
    let started = Instant::now();
    let mut acked = 0u64;
    let error = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "4 MiB never filled"
        );
        match store.persist_batch(&[blob(acked + 1), blob(acked + 2)]) {
            Ok(seq) => acked = seq,
            Err(e) => break e,
        }
    };
    println!("disk full after {acked} acknowledged events: {error}");
    assert!(acked > 0, "nothing fit: {error}");
    // Its own variant, told apart from every other I/O error without reading a message.
    assert!(
        matches!(&error, Error::DiskFull { .. }),
        "a full disk is Error::DiskFull: {error:?}"
    );
    let again = store.persist(&blob(0)).unwrap_err();
    assert!(
        matches!(&again, Error::Poisoned(cause) if matches!(**cause, Error::DiskFull { .. })),
        "the handle refuses more writes and keeps the cause: {again:?}"
    );
    drop(store);

    std::fs::remove_file(&ballast).unwrap();
    // Reopen: sled may have to finish what it was writing; give it a few tries.
    let mut reopened = None;
    for _ in 0..50 {
        match open(&db) {
            Ok(store) => {
                reopened = Some(store);
                break;
            }
            Err(e) => {
                println!("reopen: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let mut store = reopened.expect("the database reopens once space is freed");
    let head = store.highest_sequence_number();
    assert!(
        head >= acked && head <= acked + 2,
        "head {head}, acked {acked}"
    );
    let events = store.events(1, acked).unwrap();
    assert_eq!(events.len() as u64, acked);
    for (seq, event) in (1..).zip(&events) {
        assert_eq!(event, &blob(seq), "event {seq} changed");
    }
    assert!(store.verify_integrity().unwrap().is_ok());
    let next = store.persist(&blob(head + 1)).unwrap();
    assert_eq!(next, head + 1);
    assert_eq!(store.recover().unwrap().unwrap().0, head + 1);
}
