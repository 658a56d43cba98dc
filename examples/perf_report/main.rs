//! Run: `cargo run --release --example perf_report` (about 1-2 minutes on 2 cores).
//!
//! One table of Rush, one column per engine (sled with its write-ahead log, the default;
//! sled without it; redb),
//! against raw sled 0.34.7 doing the same work in the same run, plus peak RSS and database
//! size per million events. The workload is `store_bench`'s bank event (included from
//! `rush-store/benches/support/bank_workload.rs`), encrypted and compressed.
//! Scaled to finish well under five minutes on 2 cores: persist rows run 3 s each, the
//! actor row 3 s, recovery uses 1,000 actors x 50 events; replay and catch-up use the full
//! 1,000,000 events. Progress goes to stderr, the report to stdout. `PERF_REPORT_ONLY` runs
//! one row alone (`single.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    missing_docs
)]

#[path = "../../rush-store/benches/support/bank_workload.rs"]
mod bank_workload;
#[path = "../../rush-store/benches/support/cpu.rs"]
#[allow(dead_code)]
mod cpu;
#[path = "../../rush-actor/benches/support/engine.rs"]
mod engine;
mod recovery;
mod single;

use engine::Engine;

use recovery::{RECOVERIES, raw_recovery, recovery};

use bank_workload::{
    Account, BankEvent, COLLECTION, ENTITY, KEY, Raw, bincode_bytes, cpu_model, entity_event_key,
    make_event, retry_open, vm_hwm,
};
use rush_actor::{Effect, EventSourced, Persistence, PersistenceConfig};
use rush_store::{
    Backend, Database, DatabaseConfig, Durability, EncryptionKey, EventFilter, Store,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const HISTORY: u64 = 1_000_000;
const LOAD_BATCH: usize = 1000;
const POOL: usize = 10_000;
const PERSIST_FOR: Duration = Duration::from_secs(3);
const ACTORS: usize = 1000;
const ACTORS_FOR: Duration = Duration::from_secs(3);
const RECOVERY_EVENTS: u64 = 50;

/// The bank account as an actor: one command, deposit, that persists one event.
impl EventSourced for Account {
    const COLLECTION: &'static str = "actors";
    type Command = u64;
    type Reply = i64;
    type Rejection = String;

    fn decide(&self, i: u64) -> Result<Effect<Self>, String> {
        Ok(Effect::persist(make_event(i)).then_reply(|s: &Account| s.balance_cents))
    }
}

/// The engines measured, one column each, in this order.
const ENGINES: [Engine; 3] = [Engine::SLED, Engine::SledNoLog, Engine::REDB];
/// Page cache of every engine (`SledConfig`'s default).
const CACHE: u64 = 256 * 1024 * 1024;

struct Row {
    operation: String,
    /// One cell per engine of [`ENGINES`].
    ours: Vec<String>,
    raw: String,
    /// Per engine: ours / raw (or raw / ours for times and sizes).
    ratios: Vec<f64>,
}

fn row(rows: &mut Vec<Row>, operation: &str, ours: &[f64], raw: f64, unit: &str) {
    rows.push(Row {
        operation: operation.into(),
        ours: ours
            .iter()
            .map(|v| format!("{} {unit}", human(*v)))
            .collect(),
        raw: format!("{} {unit}", human(raw)),
        ratios: ours.iter().map(|v| v / raw).collect(),
    });
}

/// `b` bytes in MiB.
fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

fn open_engine(kind: Engine, dir: &Path) -> Arc<dyn Backend> {
    retry_open(|| kind.open(dir, CACHE))
}

/// The actor runtime on `kind` in `dir`, its records sealed with `KEY`, the rest defaults.
async fn open_persistence(kind: Engine, dir: &Path) -> Persistence {
    let config = PersistenceConfig {
        encryption_key: Some(EncryptionKey::from(KEY)),
        ..PersistenceConfig::default()
    };
    Persistence::open_shared(open_engine(kind, dir), config)
        .await
        .unwrap()
}

fn open_store(kind: Engine, dir: &Path) -> Store<Account> {
    Store::new(
        COLLECTION,
        ENTITY,
        open_engine(kind, dir),
        Some(&KEY[..]),
        true,
    )
    .unwrap()
}

/// Peak RSS (VmHWM, kB) of each phase so far, and the phase running now.
struct Phases {
    done: Vec<(String, u64)>,
    running: Option<String>,
}

static PHASES: std::sync::Mutex<Phases> = std::sync::Mutex::new(Phases {
    done: Vec::new(),
    running: None,
});

/// VmHWM in kB (0 when unknown).
fn peak_kb() -> u64 {
    vm_hwm().trim_end_matches("kB").trim().parse().unwrap_or(0)
}

/// Ends the running phase (recording its peak RSS, then resetting the peak through
/// `/proc/self/clear_refs`) and starts `next` (`None`: the run is over).
fn next_phase(next: Option<&str>) {
    let mut phases = PHASES.lock().unwrap();
    if let Some(running) = phases.running.take() {
        let peak = peak_kb();
        phases.done.push((running, peak));
    }
    // "5" resets VmHWM to the current RSS (Linux 4.0+); without it, peaks accumulate.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    phases.running = next.map(str::to_owned);
}

fn progress(started: Instant, what: &str) {
    next_phase(Some(what));
    eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());
}

/// Events/s of `step` (which returns events written) over `budget`.
fn rate(budget: Duration, mut step: impl FnMut() -> u64) -> f64 {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < budget {
        n += step();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn persist_batch_100(kind: Engine, pool: &[BankEvent]) -> f64 {
    let dir = TempDir::new().unwrap();
    let mut store = open_store(kind, dir.path());
    store.set_durability(Durability::Immediate);
    let mut i = 0;
    rate(PERSIST_FOR, || {
        i = (i + 100) % pool.len();
        store.persist_batch(&pool[i..i + 100]).unwrap();
        100
    })
}

fn raw_persist_batch_100(pool: &[BankEvent]) -> f64 {
    let dir = TempDir::new().unwrap();
    let mut raw = Raw::open(dir.path());
    let mut j = 0;
    rate(PERSIST_FOR, || {
        j = (j + 100) % pool.len();
        raw.insert_batch(&pool[j..j + 100], true);
        100
    })
}

/// Loads `HISTORY` events; returns the folder and its bytes on disk.
fn load_history(kind: Engine, pool: &[BankEvent]) -> (TempDir, u64) {
    let dir = TempDir::new().unwrap();
    let mut store = open_store(kind, dir.path());
    store.set_durability(Durability::Periodic);
    for chunk in 0..HISTORY / LOAD_BATCH as u64 {
        let at = (chunk as usize * LOAD_BATCH) % pool.len();
        store.persist_batch(&pool[at..at + LOAD_BATCH]).unwrap();
    }
    let engine = store.database().engine().unwrap();
    engine.flush().unwrap();
    let bytes = engine.size_on_disk().unwrap();
    (dir, bytes)
}

fn raw_load_history(pool: &[BankEvent]) -> (TempDir, u64) {
    let dir = TempDir::new().unwrap();
    let mut raw = Raw::open(dir.path());
    for chunk in 0..HISTORY / LOAD_BATCH as u64 {
        let at = (chunk as usize * LOAD_BATCH) % pool.len();
        raw.insert_batch(&pool[at..at + LOAD_BATCH], false);
    }
    raw.durable();
    let bytes = raw.db.size_on_disk().unwrap();
    (dir, bytes)
}

fn replay(kind: Engine, dir: &Path) -> f64 {
    let store = open_store(kind, dir);
    // Warm the cache once, then time one run.
    let expected = store.recover().unwrap().unwrap();
    let t = Instant::now();
    assert_eq!(store.recover().unwrap().unwrap(), expected);
    HISTORY as f64 / t.elapsed().as_secs_f64()
}

/// Raw replays: the first range scan after the load (cold) and the one after it (warm),
/// in events/s.
fn raw_replay(dir: &Path) -> (f64, f64) {
    let raw = Raw::open(dir);
    let t = Instant::now();
    assert_eq!(raw.replay().1, HISTORY);
    let cold = HISTORY as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    assert_eq!(raw.replay().1, HISTORY);
    (cold, HISTORY as f64 / t.elapsed().as_secs_f64())
}

/// `subscribers` subscriptions catch up on the whole log at once; events/s per subscriber.
/// `shared`: they share decoded pages (`DatabaseConfig::shared_read_pages`, the default),
/// or each reads alone (0, the behaviour before issue 13).
async fn catch_up(kind: Engine, dir: &Path, subscribers: usize, shared: bool) -> f64 {
    let db = Database::open_shared(
        open_engine(kind, dir),
        DatabaseConfig {
            encryption_key: Some(EncryptionKey::from(KEY)),
            shared_read_pages: if shared {
                DatabaseConfig::default().shared_read_pages
            } else {
                0
            },
            ..DatabaseConfig::default()
        },
    )
    .unwrap();
    let query = db.query::<Account>(COLLECTION).unwrap();
    let t = Instant::now();
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut live = query.subscribe(1, EventFilter::all());
            tokio::spawn(async move {
                let mut seen = 0u64;
                while seen < HISTORY {
                    let event = live.next().await.unwrap().unwrap();
                    seen += 1;
                    assert_eq!(event.offset, seen);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    HISTORY as f64 / t.elapsed().as_secs_f64()
}

/// Raw: as many threads each range-scanning and decoding the same events.
fn raw_catch_up(dir: &Path, subscribers: usize) -> f64 {
    let raw = Arc::new(Raw::open(dir));
    let t = Instant::now();
    let threads: Vec<_> = (0..subscribers)
        .map(|_| {
            let raw = Arc::clone(&raw);
            std::thread::spawn(move || assert_eq!(raw.replay().1, HISTORY))
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    HISTORY as f64 / t.elapsed().as_secs_f64()
}

/// Commands/s through `ACTORS` actors, each asking in a loop (group commit, Immediate,
/// encrypted).
async fn actors_group_commit(kind: Engine) -> f64 {
    let dir = TempDir::new().unwrap();
    let persistence = open_persistence(kind, dir.path()).await;
    let mut entities = Vec::new();
    for i in 0..ACTORS {
        entities.push(
            persistence
                .get_or_spawn::<Account>(&format!("a{i:04}"))
                .await
                .unwrap(),
        );
    }
    let until = Instant::now() + ACTORS_FOR;
    let start = Instant::now();
    let tasks: Vec<_> = entities
        .into_iter()
        .map(|entity| {
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    entity.ask(n).await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut commands = 0;
    for task in tasks {
        commands += task.await.unwrap();
    }
    let ours = commands as f64 / start.elapsed().as_secs_f64();
    persistence.shutdown().await.unwrap();
    ours
}

/// Raw: `apply_batch` of `ACTORS` events + flush + fsync in a loop. `spread`: one event
/// of each of `ACTORS` entities per batch, under the keys the actors write (what the
/// actors do: a key in each entity's range, all over the tree); otherwise `ACTORS`
/// consecutive keys of one entity (appends at the tree's end, the row before 2026-12-04).
fn raw_actors(pool: &[BankEvent], spread: bool) -> f64 {
    let raw_dir = TempDir::new().unwrap();
    let mut raw = Raw::open(raw_dir.path());
    let ids: Vec<String> = (0..ACTORS).map(|i| format!("a{i:04}")).collect();
    let mut k = 0;
    let mut round = 0u64;
    rate(ACTORS_FOR, || {
        k = (k + ACTORS) % (pool.len() - ACTORS);
        if spread {
            round += 1;
            let mut batch = sled::Batch::default();
            for (id, event) in ids.iter().zip(&pool[k..k + ACTORS]) {
                batch.insert(
                    entity_event_key(Account::COLLECTION, id, round),
                    bincode_bytes(event),
                );
            }
            raw.db.apply_batch(batch).unwrap();
            raw.durable();
        } else {
            raw.insert_batch(&pool[k..k + ACTORS], true);
        }
        ACTORS as u64
    })
}

fn main() {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool: Vec<BankEvent> = (0..POOL as u64).map(make_event).collect();
    if let Ok(only) = std::env::var("PERF_REPORT_ONLY") {
        single::run(&only, &runtime, &pool);
        return;
    }
    let mut rows = Vec::new();

    progress(started, "persist, batch 100, Immediate, encrypted");
    let ours: Vec<f64> = ENGINES
        .iter()
        .map(|&k| persist_batch_100(k, &pool))
        .collect();
    let raw = raw_persist_batch_100(&pool);
    row(
        &mut rows,
        "persist batch 100, Immediate (fsync), encrypted",
        &ours,
        raw,
        "ev/s",
    );

    progress(started, "loading 1M events (each engine and raw)");
    let loaded: Vec<(TempDir, u64)> = ENGINES.iter().map(|&k| load_history(k, &pool)).collect();
    let (raw_dir, raw_bytes) = raw_load_history(&pool);

    progress(started, "replay 1M events");
    let ours: Vec<f64> = ENGINES
        .iter()
        .zip(&loaded)
        .map(|(&k, (dir, _))| replay(k, dir.path()))
        .collect();
    let (raw_cold, raw) = raw_replay(raw_dir.path());
    row(
        &mut rows,
        "replay 1M events, encrypted (warm)",
        &ours,
        raw,
        "ev/s",
    );

    // The first read of the collection log after the load is about half as fast as the
    // next ones, also after the engine is opened again: sled works through the log's pages on first read
    // (raw has no log, and its replay above read its pages first). Shown on its own, then
    // the catch-up rows below read what both have read before.
    progress(started, "catch-up, 1 subscriber, first read after the load");
    let ours: Vec<f64> = ENGINES
        .iter()
        .zip(&loaded)
        .map(|(&k, (dir, _))| runtime.block_on(catch_up(k, dir.path(), 1, true)))
        .collect();
    row(
        &mut rows,
        "catch-up 1M events, 1 subscriber, first read after the load (raw: first scan)",
        &ours,
        raw_cold,
        "ev/s",
    );

    for (subscribers, shared) in [(1, true), (10, true), (10, false)] {
        let reading = if shared {
            "sharing pages"
        } else {
            "each alone"
        };
        progress(
            started,
            &format!("catch-up, {subscribers} subscriber(s), {reading}"),
        );
        let ours: Vec<f64> = ENGINES
            .iter()
            .zip(&loaded)
            .map(|(&k, (dir, _))| runtime.block_on(catch_up(k, dir.path(), subscribers, shared)))
            .collect();
        let raw = raw_catch_up(raw_dir.path(), subscribers);
        let alone = if shared { "" } else { ", each reading alone" };
        row(
            &mut rows,
            &format!(
                "subscription catch-up 1M events, {subscribers} subscriber(s){alone}, per sub"
            ),
            &ours,
            raw,
            "ev/s",
        );
    }

    progress(started, "1,000 actors, group commit");
    let ours: Vec<f64> = ENGINES
        .iter()
        .map(|&k| runtime.block_on(actors_group_commit(k)))
        .collect();
    let raw = raw_actors(&pool, true);
    row(
        &mut rows,
        "1,000 actors, group commit, encrypted",
        &ours,
        raw,
        "cmd/s",
    );
    let raw = raw_actors(&pool, false);
    row(
        &mut rows,
        "the same against raw writing 1,000 keys of one entity",
        &ours,
        raw,
        "cmd/s",
    );

    progress(started, "recovery of 1,000 actors");
    let ours: Vec<Duration> = ENGINES
        .iter()
        .map(|&k| runtime.block_on(recovery(k, &pool)))
        .collect();
    let raw = raw_recovery(&pool);
    rows.push(Row {
        operation: format!(
            "recover 1,000 actors x {RECOVERY_EVENTS} events (median of {RECOVERIES})"
        ),
        ours: ours
            .iter()
            .map(|d| format!("{} ms", d.as_millis()))
            .collect(),
        raw: format!("{} ms", raw.as_millis()),
        ratios: ours
            .iter()
            .map(|d| raw.as_secs_f64() / d.as_secs_f64())
            .collect(),
    });

    rows.push(Row {
        operation: "database size per 1M events".into(),
        ours: loaded
            .iter()
            .map(|(_, b)| format!("{:.1} MiB", mib(*b)))
            .collect(),
        raw: format!("{:.1} MiB", mib(raw_bytes)),
        ratios: loaded
            .iter()
            .map(|(_, b)| raw_bytes as f64 / *b as f64)
            .collect(),
    });
    drop((loaded, raw_dir));

    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("# Rush performance report");
    println!();
    println!(
        "machine: {}, {cores} cores; sled 0.34.7, redb 4.6; temp folders under {}",
        cpu_model(),
        std::env::temp_dir().display()
    );
    println!(
        "scaled for < 5 min on 2 cores: persist {PERSIST_FOR:?}, actors {ACTORS_FOR:?}, \
         recovery {ACTORS} actors x {RECOVERY_EVENTS} events; replay and catch-up 1M events"
    );
    println!();
    let names: Vec<&str> = ENGINES.iter().map(|k| k.name()).collect();
    println!(
        "| operation | {} | raw sled | {} |",
        names.join(" | "),
        names
            .iter()
            .map(|n| format!("{n} / raw"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!(
        "|---|{}---|{}",
        "---|".repeat(names.len()),
        "---|".repeat(names.len())
    );
    for r in &rows {
        let ratios: Vec<String> = r.ratios.iter().map(|x| format!("{x:.2}x")).collect();
        println!(
            "| {} | {} | {} | {} |",
            r.operation,
            r.ours.join(" | "),
            r.raw,
            ratios.join(" | ")
        );
    }
    println!();
    println!(
        "ratio: ours / raw for rates; raw / ours for times and sizes (higher is better for us)"
    );
    next_phase(None);
    let phases = PHASES.lock().unwrap().done.clone();
    let whole = phases.iter().map(|(_, kb)| *kb).max().unwrap_or(0);
    println!("peak RSS (VmHWM) of the whole run: {whole} kB");
    println!();
    println!("| phase (each engine and raw, in turn) | peak RSS |");
    println!("|---|---|");
    for (phase, kb) in &phases {
        println!("| {phase} | {:.0} MiB |", *kb as f64 / 1024.0);
    }
    println!();
    println!("total time: {:.0?}", started.elapsed());
}
