//! Databases made through the public API, and the `rush` binary run as a process on them.
#![allow(dead_code, reason = "each test file uses a part of the support")]

use rush::store::{Backend, EventMetadata, SledManager, Table, WriteBatch, WriteOp};
use rush::{PersistentActor, Store};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const KEY: [u8; 32] = [7; 32];
pub const NEW_KEY: [u8; 32] = [8; 32];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Deposited(u64),
    Withdrawn(u64),
    Noted(String),
}

#[derive(Default, Clone, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
}

impl PersistentActor for Account {
    type Event = Event;
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Deposited(n) => self.balance += n,
            Event::Withdrawn(n) => self.balance -= n,
            Event::Noted(_) => {}
        }
    }
    fn event_tags(event: &Event) -> Vec<String> {
        match event {
            Event::Deposited(n) if *n >= 1000 => vec!["large".into()],
            _ => vec![],
        }
    }
}

/// A database folder in a temporary directory.
pub struct Db {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

/// alice: events 1..=4 (a snapshot at 3, event 4 a long compressible note), bob: event 1;
/// a table row. Sealed with `key` when given.
pub fn create(key: Option<&[u8; 32]>) -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    fill(Arc::new(SledManager::new(&path).unwrap()), key);
    wait_until_released(&path);
    Db { _dir: dir, path }
}

/// Writes [`create`]'s journal into `manager`.
pub fn fill(manager: Arc<dyn Backend>, key: Option<&[u8; 32]>) {
    let key = key.map(|k| &k[..]);
    let mut alice = Store::<Account>::new("accounts", "alice", manager.clone(), key, true).unwrap();
    let metadata = EventMetadata::default().with_correlation_id("req-1");
    alice
        .persist_with_metadata(&[Event::Deposited(5000)], &metadata)
        .unwrap();
    alice
        .persist_batch(&[Event::Deposited(1), Event::Withdrawn(1)])
        .unwrap();
    alice.snapshot(&Account { balance: 5000 }).unwrap();
    alice.persist(&Event::Noted("a".repeat(400))).unwrap();
    let mut bob = Store::<Account>::new("accounts", "bob", manager.clone(), key, true).unwrap();
    bob.persist(&Event::Deposited(7)).unwrap();
    let table = Table::<String>::open(manager, "balances", key).unwrap();
    table.put("alice", &"5000".to_owned()).unwrap();
}

/// The key of an event as FORMAT.md lays it out.
pub fn event_key(collection: &str, entity: &str, seq: u64) -> Vec<u8> {
    let mut key = vec![1u8];
    for id in [collection, entity] {
        key.extend_from_slice(&(id.len() as u16).to_be_bytes());
        key.extend_from_slice(id.as_bytes());
    }
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Writes `ops` to the database in this process, then lets it go.
pub fn write(path: &Path, ops: Vec<WriteOp>) {
    {
        let manager = SledManager::new(path).unwrap();
        manager
            .commit(&WriteBatch {
                ops,
                ..WriteBatch::default()
            })
            .unwrap()
            .unwrap();
        manager.flush().unwrap();
    }
    wait_until_released(path);
}

/// Reads one value in this process.
pub fn read(path: &Path, key: &[u8]) -> Option<Vec<u8>> {
    let value = SledManager::new(path).unwrap().get(key).unwrap();
    wait_until_released(path);
    value
}

/// Waits until this process has let go of the database (after the test wrote to it).
pub fn release(path: &Path) {
    wait_until_released(path);
}

/// sled's threads let go of the file lock a moment after the last handle is dropped.
fn wait_until_released(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !rush(path, &["list"], &[])
            .stderr
            .contains("in use by another process")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the database stayed locked");
}

/// Writes `key` in hex to a file beside the database; returns its path.
pub fn key_file(db: &Db, name: &str, key: &[u8; 32]) -> String {
    let file = db.path.with_file_name(name);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&file, format!("{hex}\n")).unwrap();
    file.to_string_lossy().into_owned()
}

/// What a run of `rush` gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    /// stderr without the note a read-only command prints about the copy it looks at.
    pub stderr: String,
    /// That note, if printed.
    pub copy_note: Option<String>,
}

impl Run {
    /// What a finished `rush` process left.
    pub fn of(output: &std::process::Output) -> Self {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let is_note = |line: &&str| line.starts_with("rush: looking at a copy of ");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: stderr
                .lines()
                .filter(|line| !is_note(line))
                .map(|line| format!("{line}\n"))
                .collect(),
            copy_note: stderr.lines().find(is_note).map(str::to_owned),
        }
    }

    /// The stdout lines parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Runs `rush <path> <args>` with the environment variables `env` (and no inherited key).
pub fn rush(path: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rush"));
    command.arg(path).args(args);
    for var in ["RUSH_KEY", "RUSH_NEW_KEY", "RUSH_OLD_KEY"] {
        command.env_remove(var);
    }
    for (var, value) in env {
        command.env(var, value);
    }
    Run::of(&command.output().unwrap())
}

/// `key` in hex, for `RUSH_KEY` and friends.
pub fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}
