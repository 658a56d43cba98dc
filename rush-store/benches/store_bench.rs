//! rush-store against raw sled 0.34.7, one table per run.
//!
//! Run: `cargo bench -p rush-store --bench store_bench` (about 2-3 minutes on 2 cores).
//!
//! It measures, on fresh temporary folders, with a bank-like event of ~70 bytes of bincode:
//! - persist throughput with `Durability::Immediate` (flush + fsync of `<dir>/db` per call)
//!   and `Durability::Periodic`, one event per call and 100 per call, encryption and
//!   compression on (plus batch 100 Immediate without encryption for reference), against
//!   raw sled inserts / `apply_batch` of the same bincode bytes under keys of the same shape;
//! - replay of 1,000,000 events with `Store::recover` (no snapshot), plain, compressed and
//!   encrypted+compressed, against `Tree::range(..)` + bincode decode + apply on raw sled;
//! - recovery time with a snapshot at the head, 1,000 versus 1,000,000 events of history;
//! - peak heap (a counting global allocator) of replaying 1,000,000 events, ours and raw.
//!
//! Ours runs on sled as it opens by default, with its write-ahead log; `RUSH_BENCH_NOLOG=1`
//! runs it without the log (`SledConfig::write_ahead_log` off). Raw sled is the same
//! either way.
//!
//! Persist rows alternate ours and raw in rounds of ~1 s, each ended by a flush of what it
//! wrote (timed, so no round leaves a backlog to the next), and report the medians. Progress
//! goes to stderr, the table to stdout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

#[path = "support/bank_workload.rs"]
mod bank_workload;
#[path = "support/cpu.rs"]
mod cpu;

use bank_workload::*;
use peak_alloc::PeakAlloc;
use rush_store::{Durability, Error, PersistentActor, SledConfig, SledManager, Store};
use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Counts current and peak heap bytes (wraps `std::alloc::System` with two atomics). The
/// workspace forbids `unsafe_code`, so the `GlobalAlloc` impl comes from `peak_alloc`.
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Events in the replay, memory and big-snapshot rows.
const HISTORY: u64 = 1_000_000;
/// Events per `persist_batch` when loading the history.
const LOAD_BATCH: usize = 1000;
/// Distinct pre-built events, cycled through (a multiple of `LOAD_BATCH` and of 100).
const POOL: usize = 10_000;
/// Timed rounds per persist row (ours and raw alternate) and the length of one round.
const ROUNDS: usize = 3;
const ROUND: Duration = Duration::from_secs(1);
const WARMUP: Duration = Duration::from_millis(200);

/// Whether ours runs with sled's write-ahead log (the default; `RUSH_BENCH_NOLOG=1`: not).
fn with_log() -> bool {
    std::env::var("RUSH_BENCH_NOLOG").as_deref() != Ok("1")
}

fn open_store(dir: &Path, encrypted: bool, compressed: bool) -> Store<Account> {
    let config = SledConfig {
        write_ahead_log: with_log(),
        ..SledConfig::default()
    };
    let manager = retry_open(|| match SledManager::with_config(dir, config) {
        Err(Error::DatabaseLocked { path }) => Err(path),
        other => Ok(other.unwrap()),
    });
    Store::new(
        COLLECTION,
        ENTITY,
        manager,
        encrypted.then_some(&KEY[..]),
        compressed,
    )
    .unwrap()
}

/// Runs `step` (which returns how many events it wrote) for at least `budget`, then
/// `settle` (a flush of everything written), inside the timing: events/s. Without the
/// settle a round could leave work behind (sled writes its log buffers on threads of its
/// own) that the next round, of the other side, would pay for.
/// Also returns the process's CPU time per event over the round (only one side runs at a
/// time, so it is that side's, sled's threads included).
fn rate_round(
    budget: Duration,
    step: &mut dyn FnMut() -> u64,
    settle: &mut dyn FnMut(),
) -> (f64, Duration) {
    let (start, cpu_start) = (Instant::now(), cpu::process_cpu());
    let mut events = 0u64;
    while start.elapsed() < budget {
        events += step();
    }
    settle();
    let cpu = cpu::process_cpu().saturating_sub(cpu_start);
    (
        events as f64 / start.elapsed().as_secs_f64(),
        cpu::per_each(cpu, events),
    )
}

/// A side's median rate and its median CPU time per event.
#[derive(Clone, Copy)]
struct Measured {
    rate: f64,
    cpu_per_event: Duration,
}

impl Measured {
    fn of(rounds: &[(f64, Duration)]) -> Self {
        let cpus = rounds.iter().map(|r| r.1.as_secs_f64()).collect();
        Self {
            rate: median(rounds.iter().map(|r| r.0).collect()),
            cpu_per_event: Duration::from_secs_f64(median(cpus)),
        }
    }

    /// "12,345 ev/s, 81.0 us CPU/ev".
    fn cell(&self) -> String {
        format!(
            "{}, {} CPU/ev",
            rate(self.rate),
            cpu::per_op(self.cpu_per_event, 1)
        )
    }
}

/// A side of a comparison: its step and its settle (see [`rate_round`]).
type Side<'a> = (&'a mut dyn FnMut() -> u64, &'a mut dyn FnMut());

/// Median events/s (and CPU per event) of ours and of raw, rounds alternating so that disk
/// drift hits both.
fn compare_rates(ours: Side<'_>, raw: Side<'_>) -> (Measured, Measured) {
    let ((ours, ours_settle), (raw, raw_settle)) = (ours, raw);
    rate_round(WARMUP, ours, ours_settle);
    rate_round(WARMUP, raw, raw_settle);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        a.push(rate_round(ROUND, ours, ours_settle));
        b.push(rate_round(ROUND, raw, raw_settle));
    }
    (Measured::of(&a), Measured::of(&b))
}

/// One persist row: ours with compression on, against raw sled, `batch` events per call.
fn persist_row(
    pool: &[BankEvent],
    durability: Durability,
    batch: usize,
    encrypted: bool,
) -> (Measured, Measured) {
    let ours_dir = TempDir::new().unwrap();
    let raw_dir = TempDir::new().unwrap();
    let mut store = open_store(ours_dir.path(), encrypted, true);
    store.set_durability(durability);
    let engine = store.database().engine().unwrap();
    let raw = std::cell::RefCell::new(Raw::open(raw_dir.path()));
    let durable = durability == Durability::Immediate;
    let batches = pool.len() / batch;
    let (mut i, mut j) = (0usize, 0usize);
    let mut ours_step = || {
        let events = &pool[(i % batches) * batch..][..batch];
        i += 1;
        if batch == 1 {
            store.persist(&events[0]).unwrap();
        } else {
            store.persist_batch(events).unwrap();
        }
        batch as u64
    };
    let mut raw_step = || {
        let events = &pool[(j % batches) * batch..][..batch];
        j += 1;
        if batch == 1 {
            raw.borrow_mut().insert(&events[0], durable);
        } else {
            raw.borrow_mut().insert_batch(events, durable);
        }
        batch as u64
    };
    let mut ours_settle = || engine.flush().unwrap();
    let mut raw_settle = || raw.borrow().durable();
    compare_rates(
        (&mut ours_step, &mut ours_settle),
        (&mut raw_step, &mut raw_settle),
    )
}

/// Loads `HISTORY` events in `persist_batch`es of `LOAD_BATCH` (Periodic), one flush.
/// Returns events/s of the load and facts about the stored records.
fn load_ours(pool: &[BankEvent], dir: &Path, encrypted: bool, compressed: bool) -> (f64, String) {
    let mut store = open_store(dir, encrypted, compressed);
    store.set_durability(Durability::Periodic);
    let started = Instant::now();
    for chunk in 0..HISTORY / LOAD_BATCH as u64 {
        let at = (chunk as usize * LOAD_BATCH) % pool.len();
        store.persist_batch(&pool[at..at + LOAD_BATCH]).unwrap();
    }
    store.database().engine().unwrap().flush().unwrap();
    let rate = HISTORY as f64 / started.elapsed().as_secs_f64();
    let record = store
        .database()
        .engine()
        .unwrap()
        .get(&event_key(1))
        .unwrap()
        .unwrap();
    let stats = store.compression_stats();
    let facts = format!(
        "stored record {} B, {} of {} events compressed, {:.1} MiB on disk",
        record.len(),
        stats.compressed_events,
        stats.compressed_events + stats.uncompressed_events,
        store.database().engine().unwrap().size_on_disk().unwrap() as f64 / MIB
    );
    (rate, facts)
}

fn load_raw(pool: &[BankEvent], dir: &Path) -> (f64, String) {
    let mut raw = Raw::open(dir);
    let started = Instant::now();
    for chunk in 0..HISTORY / LOAD_BATCH as u64 {
        let at = (chunk as usize * LOAD_BATCH) % pool.len();
        raw.insert_batch(&pool[at..at + LOAD_BATCH], false);
    }
    raw.db.flush().unwrap();
    let rate = HISTORY as f64 / started.elapsed().as_secs_f64();
    let value = raw.db.get(event_key(1)).unwrap().unwrap();
    let facts = format!(
        "stored value {} B (bincode), {:.1} MiB on disk",
        value.len(),
        raw.db.size_on_disk().unwrap() as f64 / MIB
    );
    (rate, facts)
}

const MIB: f64 = 1024.0 * 1024.0;

/// Replays: the first run after opening (cold sled cache), then three warm runs.
struct Replay {
    cold_rate: f64,
    warm_rate: f64,
    cold_peak: usize,
    warm_peak: usize,
    state: Account,
}

fn measure_replay(mut run: impl FnMut() -> Account) -> Replay {
    let mut rates = Vec::new();
    let mut peaks = Vec::new();
    let mut state = Account::default();
    for _ in 0..4 {
        let baseline = ALLOC.current_usage();
        ALLOC.reset_peak_usage();
        let started = Instant::now();
        state = run();
        let elapsed = started.elapsed();
        peaks.push(ALLOC.peak_usage().saturating_sub(baseline));
        rates.push(HISTORY as f64 / elapsed.as_secs_f64());
    }
    Replay {
        cold_rate: rates[0],
        warm_rate: median(rates[1..].to_vec()),
        cold_peak: peaks[0],
        warm_peak: peaks[1..].iter().copied().max().unwrap_or(0),
        state,
    }
}

fn replay_ours(dir: &Path, encrypted: bool, compressed: bool) -> Replay {
    let store = open_store(dir, encrypted, compressed);
    measure_replay(|| store.recover().unwrap().unwrap())
}

/// Median time of `store.recover()` with a snapshot at the head.
fn snapshot_recovery(store: &mut Store<Account>, expected: &Account) -> Duration {
    let state = store.recover().unwrap().unwrap();
    assert_eq!(&state, expected);
    store.snapshot(&state).unwrap();
    assert_eq!(
        store.snapshot_sequence_numbers().unwrap().last(),
        Some(&store.highest_sequence_number())
    );
    // Open + recover, as an actor does: a few microseconds each, so many runs.
    let backend = store.database().engine().unwrap();
    let key = store.entity().clone();
    let mut times = Vec::new();
    for _ in 0..201 {
        let started = Instant::now();
        let fresh = Store::<Account>::with_backend(
            key.collection(),
            key.entity_id(),
            backend.clone(),
            Some(&KEY[..]),
            true,
        )
        .unwrap();
        let recovered = fresh.recover().unwrap().unwrap();
        times.push(started.elapsed().as_secs_f64());
        assert_eq!(&recovered, expected);
    }
    Duration::from_secs_f64(median(times))
}

fn expected_state(pool: &[BankEvent], events: u64) -> Account {
    let mut state = Account::default();
    for seq in 0..events {
        state.apply(&pool[seq as usize % pool.len()]);
    }
    state
}

/// `12345.6` -> `12,346`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(value: f64) -> String {
    format!("{} ev/s", thousands(value))
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

fn micros(d: Duration) -> String {
    format!("{:.0} us", d.as_secs_f64() * 1e6)
}

struct Row {
    operation: String,
    ours: String,
    raw: String,
    ratio: String,
    target: String,
}

impl Row {
    fn new(operation: &str, ours: String, raw: String, ratio: Option<f64>) -> Self {
        Self {
            operation: operation.to_owned(),
            ours,
            raw,
            ratio: ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}x")),
            target: String::new(),
        }
    }

    /// Marks the row with a target `ratio >= min`.
    fn at_least(mut self, ratio: f64, min: f64) -> Self {
        let met = if ratio >= min { "met" } else { "NOT MET" };
        self.target = format!("target >= {min}x: {met}");
        self
    }
}

fn print_table(rows: &[Row]) {
    let header = ["operation", "ours", "raw sled", "ratio ours/raw", "target"];
    let cells: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| [&*r.operation, &*r.ours, &*r.raw, &*r.ratio, &*r.target])
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: [&str; 5]| {
        let parts: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                let pad = w - cell.chars().count();
                if i == 0 || i == 4 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    line(header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("|-{}-|", rule.join("-|-"));
    for row in cells {
        line(row);
    }
}

fn main() {
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let pool: Vec<BankEvent> = (0..POOL as u64).map(make_event).collect();
    let sizes: Vec<usize> = pool.iter().map(|e| bincode_bytes(e).len()).collect();
    let avg_size = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    let (min_size, max_size) = (
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0),
    );
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // 1-3: persist throughput.
    let persist_rows = [
        (
            "persist, Immediate, batch 1, enc+comp",
            Durability::Immediate,
            1,
            true,
            false,
        ),
        (
            "persist, Immediate, batch 100, enc+comp",
            Durability::Immediate,
            100,
            true,
            true,
        ),
        (
            "persist, Periodic, batch 1, enc+comp",
            Durability::Periodic,
            1,
            true,
            false,
        ),
        (
            "persist, Periodic, batch 100, enc+comp",
            Durability::Periodic,
            100,
            true,
            true,
        ),
        (
            "persist, Immediate, batch 100, comp only (ref)",
            Durability::Immediate,
            100,
            false,
            false,
        ),
    ];
    for (label, durability, batch, encrypted, target) in persist_rows {
        eprintln!("[{:>5.1}s] {label} ...", started.elapsed().as_secs_f64());
        let (ours, raw) = persist_row(&pool, durability, batch, encrypted);
        let ratio = ours.rate / raw.rate;
        let row = Row::new(label, ours.cell(), raw.cell(), Some(ratio));
        rows.push(if target {
            row.at_least(ratio, 0.5)
        } else {
            row
        });
    }

    // 4-6: load 1M, replay it, memory of the replay, snapshot recovery.
    let expected = expected_state(&pool, HISTORY);
    eprintln!(
        "[{:>5.1}s] loading 1M events into raw sled ...",
        started.elapsed().as_secs_f64()
    );
    let raw_dir = TempDir::new().unwrap();
    let (raw_load, raw_facts) = load_raw(&pool, raw_dir.path());
    notes.push(format!("raw sled: {raw_facts}"));
    let raw_replay = {
        let raw = Raw::open(raw_dir.path());
        measure_replay(|| {
            let (state, count) = raw.replay();
            assert_eq!(count, HISTORY);
            state
        })
    };
    assert_eq!(raw_replay.state, expected);
    drop(raw_dir);

    let variants = [
        ("plain", false, false),
        ("compressed", false, true),
        ("enc+comp", true, true),
    ];
    let mut enc_replay = None;
    let mut snapshot_1m = Duration::ZERO;
    for (name, encrypted, compressed) in variants {
        eprintln!(
            "[{:>5.1}s] loading 1M events, {name} ...",
            started.elapsed().as_secs_f64()
        );
        let dir = TempDir::new().unwrap();
        let (load, facts) = load_ours(&pool, dir.path(), encrypted, compressed);
        notes.push(format!("{name}: {facts}"));
        rows.push(Row::new(
            &format!("load 1M (batch 1000, Periodic, 1 flush), {name}"),
            rate(load),
            rate(raw_load),
            Some(load / raw_load),
        ));
        eprintln!(
            "[{:>5.1}s] replaying 1M events, {name} ...",
            started.elapsed().as_secs_f64()
        );
        let replay = replay_ours(dir.path(), encrypted, compressed);
        assert_eq!(replay.state, expected);
        let ratio = replay.warm_rate / raw_replay.warm_rate;
        let row = Row::new(
            &format!("replay 1M, no snapshot, {name} (median of 3 warm)"),
            rate(replay.warm_rate),
            rate(raw_replay.warm_rate),
            Some(ratio),
        );
        rows.push(if encrypted {
            row.at_least(ratio, 0.5)
        } else {
            row
        });
        if encrypted {
            eprintln!(
                "[{:>5.1}s] snapshot at the head of 1M ...",
                started.elapsed().as_secs_f64()
            );
            let mut store = open_store(dir.path(), encrypted, compressed);
            snapshot_1m = snapshot_recovery(&mut store, &expected);
            enc_replay = Some(replay);
        }
    }
    let enc_replay = enc_replay.unwrap();
    rows.push(Row::new(
        "replay 1M, enc+comp, first run after open (cold cache)",
        rate(enc_replay.cold_rate),
        rate(raw_replay.cold_rate),
        Some(enc_replay.cold_rate / raw_replay.cold_rate),
    ));

    eprintln!(
        "[{:>5.1}s] snapshot at the head of 1k ...",
        started.elapsed().as_secs_f64()
    );
    let snapshot_1k = {
        let dir = TempDir::new().unwrap();
        let mut store = open_store(dir.path(), true, true);
        store.set_durability(Durability::Periodic);
        store.persist_batch(&pool[..1000]).unwrap();
        store.set_durability(Durability::Immediate);
        snapshot_recovery(&mut store, &expected_state(&pool, 1000))
    };
    rows.push(Row::new(
        "recover, snapshot at head, 1k history, enc+comp",
        micros(snapshot_1k),
        "-".into(),
        None,
    ));
    let growth = snapshot_1m.as_secs_f64() / snapshot_1k.as_secs_f64();
    let mut row = Row::new(
        "recover, snapshot at head, 1M history, enc+comp",
        micros(snapshot_1m),
        "-".into(),
        None,
    );
    row.ratio = format!("1M/1k {growth:.2}x");
    row.target = format!(
        "target 1M/1k <= 2x: {}",
        if growth <= 2.0 { "met" } else { "NOT MET" }
    );
    rows.push(row);

    let peak_ratio = |ours: usize, raw: usize| (raw > 0).then(|| ours as f64 / raw as f64);
    rows.push(Row::new(
        "peak heap, replay 1M, enc+comp, cold (1st after open)",
        mib(enc_replay.cold_peak),
        mib(raw_replay.cold_peak),
        peak_ratio(enc_replay.cold_peak, raw_replay.cold_peak),
    ));
    rows.push(Row::new(
        "peak heap, replay 1M, enc+comp, warm (max of 3)",
        mib(enc_replay.warm_peak),
        mib(raw_replay.warm_peak),
        peak_ratio(enc_replay.warm_peak, raw_replay.warm_peak),
    ));

    println!();
    println!(
        "rush-store bench: {} | {cores} CPUs (available_parallelism) | sled 0.34.7{} | cache {} MiB | {:.0} s total",
        cpu_model(),
        if with_log() {
            " with Rush's write-ahead log"
        } else {
            " without Rush's write-ahead log"
        },
        CACHE_CAPACITY / (1024 * 1024),
        started.elapsed().as_secs_f64()
    );
    println!(
        "event: bincode {avg_size:.0} B avg ({min_size}-{max_size} B), key {} B; persist rows: median of {ROUNDS} alternating {} s rounds",
        event_key(1).len(),
        ROUND.as_secs()
    );
    println!();
    print_table(&rows);
    println!();
    for note in notes {
        println!("note: {note}");
    }
    println!("VmHWM at exit: {}", vm_hwm());
}
