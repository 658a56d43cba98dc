//! Persistent-actor benchmark: throughput, `ask` latency and recovery on sled (with its
//! write-ahead log, the default; rows `sled-nolog` without it) and on redb (one row per
//! engine, same run), against raw sled doing the same batched writes.
//!
//! Run: `cargo bench -p rush-actor --bench actor_bench` (one run prints every table).
//!
//! What it measures, on `rush_store::SledManager` in fresh temporary folders:
//! 1. Durable persist through actors (default `PersistenceConfig`: `Durability::Immediate`,
//!    compression on, no encryption; plus one encrypted row at 1,000 actors) with 1, 10,
//!    100 and 1,000 actors. Each actor is driven by its own tokio task that sends deposit
//!    commands one after another (`ask`, await the reply, next) for a fixed wall time after
//!    a warm-up: commands/s, p50/p99 of `ask`, and the group-commit statistics (groups,
//!    members, average group size) of the measured window.
//!
//!    Table 1b is issue 13's baseline, same run: a hand-written rusqlite group-commit
//!    writer (bundled SQLite, WAL, `synchronous = FULL`, read back and printed) with 1, 10,
//!    100 and 1,000 clients, each keeping its account in memory, and the same writer by
//!    hand on sled (`support/handwritten.rs`): cmds/s and CPU per command beside the
//!    actors'.
//! 2. The raw sled baseline of the same run: for concurrency N, one `sled::Batch` of N
//!    inserts (same value size, keys of the same shape) + `db.flush()` + `sync_data` of the
//!    `<dir>/db` file, in a loop: events/s, and the ratio ours/raw per N. An extra
//!    informational row does what our journal really does (a free-slot read and the event
//!    per member, one collection-log block per group) to show where the gap comes from.
//!
//!    The targets block ends with the floor under the CPU per command at 1,000 clients
//!    (`support/floor.rs`): the same actors on an engine that keeps nothing, plain ractor
//!    actors persisting through a store each on that engine, the stores alone without
//!    actors, and plain ractor actors keeping a balance in memory.
//! 3. Recovery of 1,000 actors (150 events each: a snapshot at 100 + 50 events), from a
//!    freshly opened database: time until every actor has recovered and answered a
//!    read-only command.
//!
//! The machine is named in the header. Every window also records how much CPU other
//! processes took (the `other` columns, from `/proc/stat`): on a shared 2-core machine a
//! concurrent build halves the figures, and the run says so instead of misleading.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

use engine::Engine;
use rush_actor::{EntityRef, Persistence, PersistenceConfig};
use rush_store::{Backend, EncryptionKey, EngineKind, MemoryManager, Store};
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Warm-up before each measured window.
const WARMUP: Duration = Duration::from_millis(500);
/// Measured window of each throughput row.
const MEASURE: Duration = Duration::from_secs(2);
/// Concurrency levels of the throughput rows.
const LEVELS: [usize; 4] = [1, 10, 100, 1000];
/// Recovery scenario: entities, events each, snapshot interval (the default policy).
const RECOVERY_ENTITIES: usize = 1000;
const RECOVERY_EVENTS: u64 = 150;
const SNAPSHOT_AT: u64 = 100;
/// Target: ours at 1,000 actors must reach this fraction of raw sled's batched rate.
const TARGET_RATIO: f64 = 0.7;

#[path = "support/bank.rs"]
mod bank;
#[path = "support/engine.rs"]
mod engine;
#[path = "support/floor.rs"]
mod floor;
#[path = "support/handwritten.rs"]
mod handwritten;
#[path = "support/measure.rs"]
mod measure;
#[path = "support/raw_sled.rs"]
mod raw_sled;
#[path = "support/recovery.rs"]
mod recovery;

use bank::{Account, Cmd, account_id, deposited};
use measure::{cpu_sample, fmt_dur, fmt_rate, load_average, machine_header, other_cpu, percentile};
use raw_sled::{RawRow, raw_inserts, raw_row};
use recovery::recovery_row;

// ---------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------

/// Waits until the last strong handle of the backend is gone (the writer thread and the
/// actors drop theirs asynchronously), so sled's threads stop before the next row.
fn wait_dropped(weak: &Weak<dyn Backend>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while weak.strong_count() > 0 {
        assert!(Instant::now() < deadline, "backend still in use after 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Shuts `persistence` down, waits until its engine is released, then removes `dir`.
async fn shut_down(persistence: Persistence, weak: Weak<dyn Backend>, dir: tempfile::TempDir) {
    persistence.shutdown().await.unwrap();
    drop(persistence);
    tokio::task::spawn_blocking(move || wait_dropped(&weak))
        .await
        .unwrap();
    drop(dir);
}

fn sled_config(dir: &Path) -> sled::Config {
    // The same settings as rush_store::SledConfig::default().
    sled::Config::new()
        .path(dir)
        .cache_capacity(256 * 1024 * 1024)
        .flush_every_ms(Some(500))
        .use_compression(false)
}

/// `[kind][u16 len]accounts[u16 len]<entity>[seq u64]`: the shape of rush-store's keys.
fn record_key(kind: u8, entity: &str, seq: Option<u64>) -> Vec<u8> {
    let collection = b"accounts";
    let mut k = Vec::with_capacity(1 + 2 + collection.len() + 2 + entity.len() + 8);
    k.push(kind);
    k.extend_from_slice(&(collection.len() as u16).to_be_bytes());
    k.extend_from_slice(collection);
    k.extend_from_slice(&(entity.len() as u16).to_be_bytes());
    k.extend_from_slice(entity.as_bytes());
    if let Some(seq) = seq {
        k.extend_from_slice(&seq.to_be_bytes());
    }
    k
}

/// Sizes of one event: serialized (bincode) and as stored by rush-store (envelope), plain
/// and encrypted.
struct EventSizes {
    serialized: usize,
    stored_plain: usize,
    stored_encrypted: usize,
    key: usize,
}

fn event_sizes() -> EventSizes {
    let event = deposited(&account_id(123), 12_345, 1_000_000);
    let serialized = bincode::serde::encode_to_vec(&event, bincode::config::standard())
        .unwrap()
        .len();
    let stored = |key: Option<&[u8]>| {
        let manager = MemoryManager::default();
        let mut store =
            Store::<Account>::new("accounts", &account_id(123), manager.clone(), key, true)
                .unwrap();
        store.persist(&event).unwrap();
        let rows = manager.scan(&[1], &[2], 10, false).unwrap();
        assert_eq!(rows.len(), 1, "one event record");
        (rows[0].0.len(), rows[0].1.len())
    };
    let (key, stored_plain) = stored(None);
    let (_, stored_encrypted) = stored(Some(&[7u8; 32]));
    EventSizes {
        serialized,
        stored_plain,
        stored_encrypted,
        key,
    }
}

// ---------------------------------------------------------------------------------------
// 1. Durable persist through actors.
// ---------------------------------------------------------------------------------------

struct ActorRow {
    engine: &'static str,
    actors: usize,
    encrypted: bool,
    commands: u64,
    rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    groups: u64,
    members: u64,
    other_cpu: f64,
    /// This process's CPU time (every thread) per command in the window.
    cpu_per_command: Duration,
}

/// Page cache of every engine (`SledConfig`'s default).
const CACHE: u64 = 256 * 1024 * 1024;

async fn actor_row(actors: usize, encrypted: bool, kind: Engine) -> ActorRow {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = kind.open(dir.path(), CACHE).unwrap();
    let weak = Arc::downgrade(&backend);
    let config = PersistenceConfig {
        encryption_key: encrypted.then(|| EncryptionKey::from([7u8; 32])),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open_shared(backend, config).await.unwrap();

    // Start (and recover, trivially) every actor before the clock runs.
    let starts: Vec<_> = (0..actors)
        .map(|i| {
            let p = persistence.clone();
            tokio::spawn(async move { p.get_or_spawn::<Account>(&account_id(i)).await })
        })
        .collect();
    let mut entities: Vec<EntityRef<Account>> = Vec::with_capacity(actors);
    for s in starts {
        entities.push(s.await.unwrap().unwrap());
    }

    let window = actor_window();
    let clients = entities
        .into_iter()
        .enumerate()
        .map(|(i, entity)| EntityClient {
            entity,
            account: account_id(i),
        })
        .collect();
    let measured = floor::drive(clients, WARMUP, window, || persistence.group_commit_stats()).await;
    shut_down(persistence, weak, dir).await;

    let latencies = &measured.latencies;
    ActorRow {
        engine: kind.name(),
        actors,
        encrypted,
        commands: measured.commands(),
        rate: measured.commands() as f64 / window.as_secs_f64(),
        p50: percentile(latencies, 0.50),
        p99: percentile(latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        groups: measured.to.groups - measured.from.groups,
        members: measured.to.writes - measured.from.writes,
        other_cpu: other_cpu(measured.cpu_from, measured.cpu_to),
        cpu_per_command: measured.cpu_per_command(),
    }
}

/// A client of an actor row: deposits asked of one persistent account.
struct EntityClient {
    entity: EntityRef<Account>,
    account: String,
}

impl floor::Client for EntityClient {
    async fn command(&mut self, tag: u64) {
        self.entity
            .ask(Cmd::Deposit {
                account: self.account.clone(),
                amount_cents: 100 + (tag % 900),
                tag,
            })
            .await
            .expect("deposit");
    }
}

/// The measured window of an actor row: [`MEASURE`], or `ACTOR_BENCH_SECONDS` in the
/// one-row mode (long enough for the write-ahead log's checkpoints, every 64 MiB of it,
/// to show in the latencies).
fn actor_window() -> Duration {
    std::env::var("ACTOR_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|_| only_row().is_some())
        .map_or(MEASURE, Duration::from_secs)
}

// ---------------------------------------------------------------------------------------
// Main: run everything once and print the tables.
// ---------------------------------------------------------------------------------------

/// `ACTOR_BENCH_ONLY=<engine>:<actors>[:enc]` (say `sled:1000`) runs that one actor row
/// alone and prints it: a short run to profile. On sled, raw sled's group of as many events,
/// sled's insert alone and the hand-written writers (SQLite, sled) with as many clients
/// follow it, unless `ACTOR_BENCH_ALONE=1`. Engine `none` ([`engine::Discard`]) is the
/// floor: Rush with an engine that keeps nothing, followed by the other floor rows. `ACTOR_BENCH_SECONDS=<n>` measures the row for `n` seconds instead of two.
fn only_row() -> Option<(usize, bool, Engine)> {
    let spec = std::env::var("ACTOR_BENCH_ONLY").ok()?;
    let mut parts = spec.split(':');
    let kind = match parts.next()? {
        "redb" => Engine::REDB,
        "sled-nolog" => Engine::SledNoLog,
        "none" => Engine::Discard,
        _ => Engine::SLED,
    };
    let actors = parts.next()?.parse().ok()?;
    Some((actors, parts.next() == Some("enc"), kind))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run_started = Instant::now();
    let load_at_start = load_average();
    let cpu_at_start = cpu_sample();

    if let Some(row) = only_row() {
        // Profiling mode: one actor row, nothing else (run it under `perf record`).
        let (actors, encrypted, kind) = row;
        let r = runtime.block_on(actor_row(actors, encrypted, kind));
        println!(
            "{} {} actors enc={}: {:.0} cmds/s, CPU/cmd {:?}, ask p50 {:?} p99 {:?} max {:?}, groups {}, members {}",
            r.engine,
            r.actors,
            r.encrypted,
            r.rate,
            r.cpu_per_command,
            r.p50,
            r.p99,
            r.max,
            r.groups,
            r.members
        );
        if kind == Engine::Discard && std::env::var_os("ACTOR_BENCH_ALONE").is_none() {
            // The rest of the floor: the stores alone, plain ractor actors with and
            // without them.
            let floor = runtime.block_on(floor::Floor::measure(actors, WARMUP, actor_window()));
            println!("{}", floor.describe(actors, r.cpu_per_command));
        }
        // `ACTOR_BENCH_ALONE=1`: the row only (to profile it under `perf record`).
        let alone = std::env::var_os("ACTOR_BENCH_ALONE").is_some();
        if kind != Engine::REDB && kind != Engine::Discard && !alone {
            // And raw sled's group of as many events, for the latency ratio.
            let raw = raw_row(actors, event_sizes().stored_plain, false);
            println!(
                "raw sled, groups of {actors}: p50 {:?} (ours / raw {:.2}x), CPU/ev {}; \
                 sled's insert alone (no flush) {}",
                raw.group_p50,
                r.p50.as_secs_f64() / raw.group_p50.as_secs_f64(),
                measure::cpu::per_op(raw.cpu, raw.cpu_events),
                {
                    let (cpu, inserts) = raw_inserts(actors, event_sizes().stored_plain);
                    measure::cpu::per_op(cpu, inserts)
                }
            );
            // And the hand-written writers of table 1b with as many clients.
            for store in [handwritten::Store::Sqlite, handwritten::Store::Sled] {
                let w = runtime.block_on(handwritten::writer_row(store, actors, WARMUP, MEASURE));
                println!(
                    "by hand on {store:?}, {actors} clients: {:.0} cmds/s (ours / it {:.2}x), \
                     CPU/cmd {}, p50 {:?}",
                    w.rate,
                    r.rate / w.rate,
                    measure::cpu::per_op(w.cpu_per_command, 1),
                    w.p50
                );
            }
        }
        return;
    }
    println!("rush-actor benchmark (cargo bench -p rush-actor --bench actor_bench)");
    println!("{}", machine_header());
    let sizes = event_sizes();
    println!(
        "event: bincode {} B serialized; stored record {} B plain / {} B encrypted, key {} B \
         (below the 128 B compression threshold, so compression on stores it as is)",
        sizes.serialized, sizes.stored_plain, sizes.stored_encrypted, sizes.key
    );
    println!(
        "each row: {} ms warm-up, then {} s measured; every actor driven by its own task, \
         one ask at a time",
        WARMUP.as_millis(),
        MEASURE.as_secs()
    );
    println!();

    // Per concurrency level: raw, raw with our ops, actors, raw again. The raw rate used
    // for the ratio is the mean of the runs just before and just after the actor row, so
    // that disk noise drifting over the run hits both sides alike.
    let mut raw: Vec<(RawRow, RawRow)> = Vec::new();
    let mut raw_like = Vec::new();
    let mut ours = Vec::new();
    let mut ours_nolog = Vec::new();
    let mut ours_redb = Vec::new();
    let mut sqlite = Vec::new();
    let mut by_hand_sled = Vec::new();
    for n in LEVELS {
        eprintln!("running concurrency {n} ...");
        sqlite.push(runtime.block_on(handwritten::writer_row(
            handwritten::Store::Sqlite,
            n,
            WARMUP,
            MEASURE,
        )));
        by_hand_sled.push(runtime.block_on(handwritten::writer_row(
            handwritten::Store::Sled,
            n,
            WARMUP,
            MEASURE,
        )));
        let before = raw_row(n, sizes.stored_plain, false);
        raw_like.push(raw_row(n, sizes.stored_plain, true));
        ours.push(runtime.block_on(actor_row(n, false, Engine::SLED)));
        ours_nolog.push(runtime.block_on(actor_row(n, false, Engine::SledNoLog)));
        ours_redb.push(runtime.block_on(actor_row(n, false, Engine::REDB)));
        raw.push((before, raw_row(n, sizes.stored_plain, false)));
    }
    eprintln!("running 1000 encrypted actors ...");
    let encrypted = runtime.block_on(actor_row(1000, true, Engine::SLED));
    let encrypted_nolog = runtime.block_on(actor_row(1000, true, Engine::SledNoLog));
    let encrypted_redb = runtime.block_on(actor_row(1000, true, Engine::REDB));
    eprintln!("running the floor (no engine, no actors, plain ractor) ...");
    let no_engine = runtime.block_on(actor_row(1000, false, Engine::Discard));
    let floor = runtime.block_on(floor::Floor::measure(1000, WARMUP, actor_window()));
    eprintln!("running recovery ...");
    let recovery = runtime.block_on(recovery_row(EngineKind::Sled));
    let recovery_redb = runtime.block_on(recovery_row(EngineKind::Redb));
    let raw_rate = |(a, b): &(RawRow, RawRow)| (a.rate + b.rate) / 2.0;

    println!("== 1. Durable persist through actors (Durability::Immediate, compression on) ==");
    println!(
        "{:<8} {:<7} {:>4} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>8} {:>9} {:>9} {:>6}",
        "engine",
        "actors",
        "enc",
        "commands",
        "cmds/s",
        "CPU/cmd",
        "ask p50",
        "ask p99",
        "ask max",
        "groups",
        "members",
        "avg grp",
        "raw ev/s",
        "ours/raw",
        "other"
    );
    let rows = ours.iter().zip(raw.iter().map(raw_rate));
    let rows = rows.chain(raw.last().map(raw_rate).map(|r| (&encrypted, r)));
    let nolog_rows = ours_nolog.iter().zip(raw.iter().map(raw_rate));
    let nolog_rows = nolog_rows.chain(raw.last().map(raw_rate).map(|r| (&encrypted_nolog, r)));
    let redb_rows = ours_redb.iter().zip(raw.iter().map(raw_rate));
    let redb_rows = redb_rows.chain(raw.last().map(raw_rate).map(|r| (&encrypted_redb, r)));
    let rows = rows.chain(nolog_rows).chain(redb_rows);
    for (o, r) in rows {
        let avg_group = if o.groups == 0 {
            0.0
        } else {
            o.members as f64 / o.groups as f64
        };
        println!(
            "{:<8} {:<7} {:>4} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>8.1} {:>9} {:>8.2}x {:>5.0}%",
            o.engine,
            o.actors,
            if o.encrypted { "yes" } else { "no" },
            o.commands,
            fmt_rate(o.rate),
            measure::cpu::per_op(o.cpu_per_command, 1),
            fmt_dur(o.p50),
            fmt_dur(o.p99),
            fmt_dur(o.max),
            o.groups,
            o.members,
            avg_group,
            fmt_rate(r),
            o.rate / r,
            o.other_cpu * 100.0
        );
    }
    println!(
        "(cmds/s: replies received in the measured window; CPU/cmd: this process's CPU time, \
         every thread, per reply; groups/members: group commits in \
         the window and the appends in them, members include the snapshot every 100 events; \
         raw ev/s: mean of the two raw runs of table 2; other: share of the 2 cores that \
         other processes or the hypervisor took during the window)"
    );
    println!();

    let actors = |rows: &[ActorRow]| -> Vec<(f64, Duration)> {
        rows.iter().map(|r| (r.rate, r.cpu_per_command)).collect()
    };
    handwritten::print_table(
        &sqlite,
        &by_hand_sled,
        &actors(&ours),
        &actors(&ours_nolog),
        &actors(&ours_redb),
    );

    println!(
        "== 2. Raw sled baseline: Batch of N inserts ({} B values, {} B keys) + flush() + sync_data(db) per group ==",
        sizes.stored_plain, sizes.key
    );
    println!(
        "{:<5}| {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} {:>9} | {:>8} {:>9} | {:>6}",
        "N",
        "before",
        "after",
        "mean ev/s",
        "CPU/ev",
        "grp p50",
        "grp p99",
        "same-ops",
        "CPU/ev",
        "grp p50",
        "grp p99",
        "ours/raw",
        "ours/same",
        "other"
    );
    for (((n, pair), l), o) in LEVELS.iter().zip(&raw).zip(&raw_like).zip(&ours) {
        let (a, b) = pair;
        println!(
            "{:<5}| {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} {:>9} | {:>7.2}x {:>8.2}x | {:>5.0}%",
            n,
            fmt_rate(a.rate),
            fmt_rate(b.rate),
            fmt_rate(raw_rate(pair)),
            measure::cpu::per_op(a.cpu + b.cpu, a.cpu_events + b.cpu_events),
            fmt_dur(a.group_p50),
            fmt_dur(a.group_p99),
            fmt_rate(l.rate),
            measure::cpu::per_op(l.cpu, l.cpu_events),
            fmt_dur(l.group_p50),
            fmt_dur(l.group_p99),
            o.rate / raw_rate(pair),
            o.rate / l.rate,
            a.other_cpu.max(b.other_cpu).max(l.other_cpu) * 100.0
        );
    }
    println!(
        "(before/after: raw runs just before and after the actor row, events/s; grp: one \
         batch + flush + fsync; CPU/ev: this process's CPU time, sled's threads included, per \
         event written (before and after together). same-ops: what the journal append really does, per event \
         a free-slot get + event insert, per group one log block, informational; other: the most CPU other \
         processes took during the three raw runs)"
    );
    println!();

    let ours_1000 = ours.last().unwrap();
    let ratio = ours_1000.rate / raw.last().map(raw_rate).unwrap();
    println!("== Targets ==");
    println!(
        "1,000 actors vs raw sled batched writes: {:.2}x (target >= {TARGET_RATIO}x): {}",
        ratio,
        if ratio >= TARGET_RATIO {
            "MET"
        } else {
            "NOT MET"
        }
    );
    let growth = ours_1000.rate / ours[0].rate;
    let grows = ours.windows(2).all(|w| w[1].rate > w[0].rate);
    println!(
        "throughput growth 1,000 actors / 1 actor: {growth:.1}x; grows at every step 1 -> 10 -> 100 -> 1000: {}",
        if grows { "MET" } else { "NOT MET" }
    );
    println!(
        "encryption at 1,000 actors: {:.2}x the unencrypted rate",
        encrypted.rate / ours_1000.rate
    );
    // Issue 13 asks for at most 10 us of CPU per command at 1,000 clients; raw sled's own
    // CPU per event for groups of 1,000 is the floor under it on this engine.
    let (raw_a, raw_b) = raw.last().unwrap();
    let raw_like_1000 = raw_like.last().unwrap();
    let (insert_cpu, inserts) = raw_inserts(1000, sizes.stored_plain);
    println!(
        "CPU per command at 1,000 actors: {} (target <= 10 us: {}); raw sled alone spends {} per event at groups of 1,000 (same-ops: {}), its insert alone (no flush) {}",
        measure::cpu::per_op(ours_1000.cpu_per_command, 1),
        if ours_1000.cpu_per_command <= Duration::from_micros(10) {
            "MET"
        } else {
            "NOT MET"
        },
        measure::cpu::per_op(raw_a.cpu + raw_b.cpu, raw_a.cpu_events + raw_b.cpu_events),
        measure::cpu::per_op(raw_like_1000.cpu, raw_like_1000.cpu_events),
        measure::cpu::per_op(insert_cpu, inserts)
    );
    println!("{}", floor.describe(1000, no_engine.cpu_per_command));
    println!();

    println!(
        "== 3. Recovery: {RECOVERY_ENTITIES} actors x {RECOVERY_EVENTS} events (snapshot at {SNAPSHOT_AT} + {} events each) ==",
        RECOVERY_EVENTS - SNAPSHOT_AT
    );
    println!(
        "populate (Store::persist_batch, Durability::Periodic, one flush): {}; database {:.1} MiB on disk",
        fmt_dur(recovery.populate),
        recovery.size_on_disk as f64 / (1024.0 * 1024.0)
    );
    println!(
        "open SledManager on the folder: {}",
        fmt_dur(recovery.open_db)
    );
    println!(
        "get_or_spawn + read-only ask, all {RECOVERY_ENTITIES} at once: total {}, {} per actor (total / {RECOVERY_ENTITIES})",
        fmt_dur(recovery.total),
        fmt_dur(recovery.total / RECOVERY_ENTITIES as u32)
    );
    println!(
        "per caller (spawn to reply, incl. waiting for a permit): mean {}, p50 {}, max {}",
        fmt_dur(recovery.caller_mean),
        fmt_dur(recovery.caller_p50),
        fmt_dur(recovery.caller_max)
    );
    println!(
        "per actor recovery (snapshot load + 50-event replay, EntityMetrics): mean {}, max {}",
        fmt_dur(recovery.recovery_mean),
        fmt_dur(recovery.recovery_max)
    );
    println!(
        "max_concurrent_recoveries: {} (default); group commits during recovery: {}",
        recovery.max_concurrent, recovery.groups
    );
    println!(
        "on redb, the same recovery: total {} ({} per actor), open {}, {:.1} MiB on disk; \
         per caller mean {}, max {}",
        fmt_dur(recovery_redb.total),
        fmt_dur(recovery_redb.total / RECOVERY_ENTITIES as u32),
        fmt_dur(recovery_redb.open_db),
        recovery_redb.size_on_disk as f64 / (1024.0 * 1024.0),
        fmt_dur(recovery_redb.caller_mean),
        fmt_dur(recovery_redb.caller_max)
    );
    println!();
    println!(
        "whole run: {}; load average at start {} / at end {}; other processes took {:.0}% of \
         the cores during the run{}",
        fmt_dur(run_started.elapsed()),
        load_at_start,
        load_average(),
        other_cpu(cpu_at_start, cpu_sample()) * 100.0,
        if other_cpu(cpu_at_start, cpu_sample()) > 0.10 {
            " (WARNING: the machine was shared, figures are not comparable)"
        } else {
            ""
        }
    );
}
