//! The engines side by side, at the engine contract (`Backend::commit` + `flush`, one
//! durable group commit per step), each against its raw engine doing the same writes:
//! - raw sled: `apply_batch` of the same keys and bytes, `flush`, fsync of `db`;
//! - raw sled + mark: the same plus what the commit mark adds (a counter key in the
//!   batch, a 24-byte in-place write and data sync of `rush-mark` per flush), so its
//!   ratio to raw sled is the mark's cost;
//! - `SledManager`, `RedbManager`: Rush's engines;
//! - raw redb: one write transaction with `Durability::Immediate` per group.
//!
//! A second table runs the whole path: 100 concurrent writers (tokio tasks, one entity
//! each) persisting one event per call through the database's group-commit writer, with
//! `Durability::Immediate`, on sled and redb with the commit mark on and off: the ratio
//! is the mark's cost to group-commit throughput.
//!
//! Sides run in alternating rounds of ~1 s so that disk drift hits all of them; cells are
//! medians, with the process's CPU time per entry. `cargo bench -p rush-store --bench
//! engine_bench`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "support/cpu.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod cpu;

use redb::{ReadableDatabase, TableDefinition};
use rush_store::{
    Backend, Database, DatabaseConfig, EventMetadata, LogAppend, PersistentActor, RedbConfig,
    RedbManager, SledConfig, SledManager, WriteBatch,
};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const ROUNDS: usize = 5;
/// Rounds per side of the database-core table (its ratio is the mark's cost, which is
/// smaller than this machine's noise between single rounds).
const CORE_ROUNDS: usize = 9;
const ROUND: Duration = Duration::from_secs(1);
const WARMUP: Duration = Duration::from_millis(300);
/// Bytes per entry: about one sealed, compressed bank event.
const ENTRY: usize = 150;
const LOG: &[u8] = b"\x05\x00\x08accounts";
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("raw");

/// One side: writes and durably commits one group of `batch` entries per call.
trait Side {
    fn name(&self) -> &'static str;
    fn group(&mut self, batch: usize);
}

struct Raw {
    pipelined: Option<(std::sync::mpsc::Sender<u64>, std::sync::mpsc::Receiver<u64>)>,
    marks_in_flight: usize,
    db: sled::Db,
    file: File,
    next: u64,
    /// The commit mark's work, when measuring it.
    mark: Option<File>,
    _dir: TempDir,
}

impl Raw {
    fn open(with_mark: bool) -> Self {
        let dir = TempDir::new().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(256 * 1024 * 1024)
            .flush_every_ms(Some(500))
            .open()
            .unwrap();
        let file = File::open(dir.path().join("db")).unwrap();
        let mark = with_mark.then(|| {
            let mark = File::create(dir.path().join("rush-mark")).unwrap();
            mark.write_all_at(&[0u8; 24], 0).unwrap();
            mark.sync_all().unwrap();
            mark
        });
        Self {
            pipelined: None,
            marks_in_flight: 0,
            db,
            file,
            next: 1,
            mark,
            _dir: dir,
        }
    }
}

impl Side for Raw {
    fn name(&self) -> &'static str {
        if self.pipelined.is_some() {
            "raw sled + mark, pipelined"
        } else if self.mark.is_some() {
            "raw sled + mark"
        } else {
            "raw sled"
        }
    }

    fn group(&mut self, batch: usize) {
        let mut sled_batch = sled::Batch::default();
        for _ in 0..batch {
            let mut key = LOG.to_vec();
            key.extend_from_slice(&self.next.to_be_bytes());
            sled_batch.insert(key, &[7u8; ENTRY][..]);
            self.next += 1;
        }
        if self.mark.is_some() || self.pipelined.is_some() {
            sled_batch.insert(&b"\xFF\xFFrush/commits"[..], &self.next.to_be_bytes()[..]);
        }
        self.db.apply_batch(sled_batch).unwrap();
        self.db.flush().unwrap();
        self.file.sync_data().unwrap();
        if let Some((to_marker, done)) = &self.pipelined {
            // The mark of this group is written while the next group commits; the
            // previous group's mark must be done before this one is sent.
            if self.marks_in_flight > 0 {
                let _ = done.recv();
                self.marks_in_flight -= 1;
            }
            to_marker.send(self.next).unwrap();
            self.marks_in_flight += 1;
        } else if let Some(mark) = &self.mark {
            mark.write_all_at(&[1u8; 24], 0).unwrap();
            mark.sync_data().unwrap();
        }
    }
}

/// A Rush engine at the `Backend` contract: one block of `batch` appends per commit.
struct Ours {
    name: &'static str,
    engine: Box<dyn Backend>,
    _dir: TempDir,
}

impl Side for Ours {
    fn name(&self) -> &'static str {
        self.name
    }

    fn group(&mut self, batch: usize) {
        let appends = (0..batch)
            .map(|_| LogAppend {
                log: LOG.to_vec(),
                value: vec![7u8; ENTRY],
            })
            .collect();
        let batch = WriteBatch {
            appends,
            ..WriteBatch::default()
        };
        // What the database core's writer does for a group asking for durability, with
        // the last step (the commit mark) run here rather than beside the next group.
        let (committed, step) = self.engine.commit_durable(&batch).unwrap();
        committed.unwrap();
        if let Some(step) = step {
            step().unwrap();
        }
    }
}

struct RawRedb {
    db: redb::Database,
    next: u64,
    _dir: TempDir,
}

impl Side for RawRedb {
    fn name(&self) -> &'static str {
        "raw redb"
    }

    fn group(&mut self, batch: usize) {
        let txn = self.db.begin_write().unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            for _ in 0..batch {
                let mut key = LOG.to_vec();
                key.extend_from_slice(&self.next.to_be_bytes());
                table.insert(key.as_slice(), &[7u8; ENTRY][..]).unwrap();
                self.next += 1;
            }
        }
        txn.commit().unwrap();
    }
}

fn sides() -> Vec<Box<dyn Side>> {
    let sled_dir = TempDir::new().unwrap();
    let redb_dir = TempDir::new().unwrap();
    let raw_redb_dir = TempDir::new().unwrap();
    let raw_redb = redb::Database::create(raw_redb_dir.path().join("raw.redb")).unwrap();
    // The table exists before the first timed write, as in Rush's engine.
    let txn = raw_redb.begin_write().unwrap();
    txn.open_table(TABLE).unwrap();
    txn.commit().unwrap();
    drop(raw_redb.begin_read().unwrap());
    vec![
        Box::new(Raw::open(false)),
        Box::new(Raw::open(true)),
        Box::new({
            let mut raw = Raw::open(true);
            let mark = raw.mark.take().unwrap();
            let (to_marker, requests) = std::sync::mpsc::channel::<u64>();
            let (done_tx, done) = std::sync::mpsc::channel::<u64>();
            std::thread::spawn(move || {
                for n in requests {
                    mark.write_all_at(&n.to_be_bytes(), 0).unwrap();
                    mark.sync_data().unwrap();
                    if done_tx.send(n).is_err() {
                        break;
                    }
                }
            });
            raw.pipelined = Some((to_marker, done));
            raw
        }),
        Box::new(Ours {
            name: "SledManager",
            engine: Box::new(SledManager::new(sled_dir.path()).unwrap()),
            _dir: sled_dir,
        }),
        Box::new(RawRedb {
            db: raw_redb,
            next: 1,
            _dir: raw_redb_dir,
        }),
        Box::new(Ours {
            name: "RedbManager",
            engine: Box::new(RedbManager::new(redb_dir.path()).unwrap()),
            _dir: redb_dir,
        }),
    ]
}

/// Entries per second and CPU per entry of one round of `side`.
fn round(side: &mut dyn Side, batch: usize, budget: Duration) -> (f64, Duration) {
    let (start, cpu_start) = (Instant::now(), cpu::process_cpu());
    let mut entries = 0u64;
    while start.elapsed() < budget {
        side.group(batch);
        entries += batch as u64;
    }
    let cpu = cpu::process_cpu().saturating_sub(cpu_start);
    (
        entries as f64 / start.elapsed().as_secs_f64(),
        cpu / u32::try_from(entries.max(1)).unwrap_or(u32::MAX),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct Counter {
    total: u64,
}

impl PersistentActor for Counter {
    type Event = u64;
    fn apply(&mut self, event: &u64) {
        self.total += event;
    }
}

/// Concurrent writers through the database core.
const WRITERS: usize = 100;

struct Core {
    name: &'static str,
    db: Database,
    _dir: TempDir,
}

fn cores() -> Vec<Core> {
    let open = |name, mark: bool, redb: bool| {
        let dir = TempDir::new().unwrap();
        let engine: Arc<dyn Backend> = if redb {
            Arc::new(
                RedbManager::with_config(
                    dir.path(),
                    RedbConfig {
                        commit_mark: mark,
                        ..RedbConfig::default()
                    },
                )
                .unwrap(),
            )
        } else {
            Arc::new(
                SledManager::with_config(
                    dir.path(),
                    SledConfig {
                        commit_mark: mark,
                        ..SledConfig::default()
                    },
                )
                .unwrap(),
            )
        };
        let db = Database::open_shared(engine, DatabaseConfig::default()).unwrap();
        Core {
            name,
            db,
            _dir: dir,
        }
    };
    vec![
        open("sled, no mark", false, false),
        open("sled, mark", true, false),
        open("redb, no mark", false, true),
        open("redb, mark", true, true),
    ]
}

/// Events per second and CPU per event of `WRITERS` tasks persisting for `budget`.
fn core_round(
    runtime: &tokio::runtime::Runtime,
    db: &Database,
    round: usize,
    budget: Duration,
) -> (f64, Duration) {
    let (start, cpu_start) = (Instant::now(), cpu::process_cpu());
    let events: u64 = runtime.block_on(async {
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    let mut store = db
                        .store::<Counter>("counters", &format!("r{round}-w{w}"))
                        .unwrap();
                    let mut written = 0u64;
                    while start.elapsed() < budget {
                        store
                            .persist_async(&[1], &EventMetadata::default())
                            .await
                            .unwrap();
                        written += 1;
                    }
                    written
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        total
    });
    let cpu = cpu::process_cpu().saturating_sub(cpu_start);
    (
        events as f64 / start.elapsed().as_secs_f64(),
        cpu / u32::try_from(events.max(1)).unwrap_or(u32::MAX),
    )
}

fn core_table() {
    println!(
        "\n{WRITERS} concurrent writers through the database core, one event per call, Durability::Immediate\n"
    );
    println!("| engine | events/s | CPU/event | mean group | ratio mark / no mark |");
    println!("|---|---|---|---|---|");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cores = cores();
    for (i, core) in cores.iter().enumerate() {
        core_round(&runtime, &core.db, 1000 + i, WARMUP);
    }
    let mut results: Vec<Vec<(f64, Duration)>> = vec![Vec::new(); cores.len()];
    for round in 0..CORE_ROUNDS {
        for (i, (core, result)) in cores.iter().zip(&mut results).enumerate() {
            result.push(core_round(&runtime, &core.db, round * 10 + i, ROUND));
        }
    }
    let rates: Vec<f64> = results
        .iter()
        .map(|r| median(r.iter().map(|x| x.0).collect()))
        .collect();
    for (i, core) in cores.iter().enumerate() {
        let cpu = Duration::from_secs_f64(median(
            results[i].iter().map(|x| x.1.as_secs_f64()).collect(),
        ));
        let ratio = if i % 2 == 1 {
            format!("{:.2}x", rates[i] / rates[i - 1])
        } else {
            "baseline".into()
        };
        println!(
            "| {} | {:.0} | {} | {:.1} | {ratio} |",
            core.name,
            rates[i],
            cpu::per_op(cpu, 1),
            core.db.writer_stats().average_group()
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!(
        "engine_bench: durable group commits at the engine contract, {ROUNDS} alternating rounds of {ROUND:?} per side, entries of {ENTRY} bytes\n"
    );
    println!("| entries per group | side | entries/s | CPU/entry | ratio to its raw engine |");
    println!("|---|---|---|---|---|");
    for batch in [1usize, 100] {
        let mut sides = sides();
        for side in &mut sides {
            round(side.as_mut(), batch, WARMUP);
        }
        let mut results: Vec<Vec<(f64, Duration)>> = vec![Vec::new(); sides.len()];
        for _ in 0..ROUNDS {
            for (side, result) in sides.iter_mut().zip(&mut results) {
                result.push(round(side.as_mut(), batch, ROUND));
            }
        }
        let rates: Vec<f64> = results
            .iter()
            .map(|r| median(r.iter().map(|x| x.0).collect()))
            .collect();
        let cpus: Vec<Duration> = results
            .iter()
            .map(|r| Duration::from_secs_f64(median(r.iter().map(|x| x.1.as_secs_f64()).collect())))
            .collect();
        // Raw sled is side 0, raw redb side 4.
        let baseline = [0, 0, 0, 0, 4, 4];
        for (i, side) in sides.iter().enumerate() {
            let ratio = if baseline[i] == i {
                "baseline".to_owned()
            } else {
                format!(
                    "{:.2}x {}",
                    rates[i] / rates[baseline[i]],
                    sides[baseline[i]].name()
                )
            };
            println!(
                "| {batch} | {} | {:.0} | {} | {ratio} |",
                side.name(),
                rates[i],
                cpu::per_op(cpus[i], 1)
            );
        }
    }
    core_table();
}
