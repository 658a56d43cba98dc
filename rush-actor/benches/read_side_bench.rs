//! Read-side benchmark: subscription throughput (1 and 10 subscribers, catching up and
//! live) over 1,000,000 events, against raw sled doing the same reads in the same run.
//!
//! Run: `cargo bench -p rush-actor --bench read_side_bench` (prints one table).
//!
//! Setup: 1,000,000 events of 1,000 entities in one collection of a fresh sled folder,
//! written through `rush_store::Store` in batches of 1,000, encrypted and compressed as the
//! default actor configuration writes them (compression on; encryption on, as most users
//! who need a read side run it).
//! - raw sled: one range scan of the collection log plus one `get` of each event record
//!   (the reads a subscription does, without decrypting or decoding): the upper bound.
//! - catch-up: a subscription from offset 1 until it has yielded every event (1 subscriber,
//!   then 10 concurrent ones on the 2 tokio workers, counted together).
//! - live: subscribers caught up at the head while one writer commits 100,000 more events
//!   in batches of 100; events/s delivered to each and the lag when the writer stops.
//! - projection rebuild: an exactly-once projection (a balance row per entity in a table of
//!   the same database, written with its checkpoint in one batch per page) built from
//!   offset 0 over the 1,000,000 events, then `rebuild()` (clear + again); compared with
//!   the 1-subscriber catch-up rate, which reads and decodes the same events.
//!
//! `READ_SIDE_ONLY=projection` runs the setup and the projection rows alone (to profile
//! them). Ours runs on sled as it opens by default, with its write-ahead log;
//! `RUSH_BENCH_NOLOG=1` runs it without (`SledConfig::write_ahead_log` off).
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

#[path = "../../rush-store/benches/support/cpu.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod cpu;

use rush_actor::{
    Delivery, Effect, EventSourced, Persistence, PersistenceConfig, Projection, ProjectionError,
    ProjectionSettings, ProjectionTx,
};
use rush_store::{
    Backend, Durability, EventFilter, EventQuery, PersistentActor, SledConfig, SledManager, Store,
    StoredEvent, Table,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ENTITIES: u64 = 1_000;
const EVENTS_PER_ENTITY: u64 = 1_000;
const TOTAL: u64 = ENTITIES * EVENTS_PER_ENTITY;
const LIVE_EVENTS: u64 = 100_000;
const KEY: [u8; 32] = [7u8; 32];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum BankEvent {
    Deposited {
        amount_cents: u64,
        reference: String,
    },
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Account {
    balance: u64,
}

impl PersistentActor for Account {
    type Event = BankEvent;
    fn apply(&mut self, event: &BankEvent) {
        let BankEvent::Deposited { amount_cents, .. } = event;
        self.balance += amount_cents;
    }
}

impl EventSourced for Account {
    const COLLECTION: &'static str = "accounts";
    type Command = BankEvent;
    type Reply = u64;
    type Rejection = String;
    fn decide(&self, command: BankEvent) -> Result<Effect<Self>, String> {
        Ok(Effect::persist(command).then_reply(|s: &Account| s.balance))
    }
}

/// Balance per entity, exactly once, in a table beside the journal.
struct Balances {
    table: Table<u64>,
}

impl Projection for Balances {
    type Actor = Account;
    fn name(&self) -> &str {
        "balances"
    }
    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }
    fn read_model_tables(&self) -> Vec<String> {
        vec![self.table.name().to_owned()]
    }
    async fn handle(
        &mut self,
        event: &StoredEvent<BankEvent>,
        tx: &mut ProjectionTx,
    ) -> Result<(), ProjectionError> {
        let BankEvent::Deposited { amount_cents, .. } = &event.event;
        let balance = tx.get(&self.table, &event.entity_id).await?.unwrap_or(0);
        tx.put(&self.table, &event.entity_id, balance + amount_cents)?;
        Ok(())
    }
}

/// Events/s of building the projection from zero, then of `rebuild()`.
async fn projection_rebuild(backend: &Arc<dyn Backend>) -> (f64, f64, usize, u64) {
    let config = PersistenceConfig {
        encryption_key: Some(KEY.into()),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open_shared(backend.clone(), config)
        .await
        .unwrap();
    let table = persistence.table::<u64>("balances").unwrap();
    let settings = ProjectionSettings {
        batch_size: 1024,
        ..ProjectionSettings::default()
    };
    let head = persistence
        .query::<Account>()
        .unwrap()
        .highest_offset()
        .unwrap();
    let started = Instant::now();
    let handle = persistence
        .spawn_projection_with(
            Balances {
                table: table.clone(),
            },
            settings,
        )
        .await
        .unwrap();
    handle
        .wait_until_caught_up(Duration::from_secs(600))
        .await
        .unwrap();
    let first = head as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    handle.rebuild().await.unwrap();
    handle
        .wait_until_caught_up(Duration::from_secs(600))
        .await
        .unwrap();
    let again = head as f64 / started.elapsed().as_secs_f64();
    let rows = table.rows("").unwrap().len();
    handle.stop().await.unwrap();
    persistence.shutdown().await.unwrap();
    (first, again, rows, head)
}

fn event(i: u64) -> BankEvent {
    BankEvent::Deposited {
        amount_cents: i % 10_000,
        reference: format!("ref-{i:010}"),
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{model}, {cores} cores available; sled 0.34.7; tokio multi-thread, 2 workers")
}

fn populate(backend: &Arc<dyn Backend>) -> Duration {
    let started = Instant::now();
    for e in 0..ENTITIES {
        let mut store = Store::<Account>::with_backend(
            "accounts",
            &format!("acct-{e:05}"),
            backend.clone(),
            Some(&KEY),
            true,
        )
        .unwrap();
        store.set_durability(Durability::Periodic);
        let events: Vec<_> = (0..EVENTS_PER_ENTITY)
            .map(|i| event(e * EVENTS_PER_ENTITY + i))
            .collect();
        store.persist_batch(&events).unwrap();
    }
    backend.flush().unwrap();
    started.elapsed()
}

/// The reads a subscription does, raw: the log scan and one get per event.
fn raw_reads(backend: &Arc<dyn Backend>) -> f64 {
    let started = Instant::now();
    let mut log = vec![5u8];
    log.extend_from_slice(&8u16.to_be_bytes());
    log.extend_from_slice(b"accounts");
    let mut end = log.clone();
    *end.last_mut().unwrap() += 1;
    let mut count = 0u64;
    let mut bytes = 0usize;
    let mut event_key = Vec::new();
    backend
        .visit_range(&log, &end, &mut |key, block| {
            // A log block's entries (FORMAT.md, version 2, prefix-compressed), each
            // `[2][timestamp u64][len u16][entity id][seq u64]`.
            let entries = rush_store::engine_kit::decode_block(key, block).unwrap();
            entries.visit(&mut |entry| {
                let (entity, seq) = entry[11..].split_at(entry.len() - 19);
                event_key.clear();
                event_key.push(1u8);
                event_key.extend_from_slice(&8u16.to_be_bytes());
                event_key.extend_from_slice(b"accounts");
                event_key.extend_from_slice(&(entity.len() as u16).to_be_bytes());
                event_key.extend_from_slice(entity);
                event_key.extend_from_slice(seq);
                bytes += backend.get(&event_key)?.map_or(0, |v| v.len());
                count += 1;
                Ok(true)
            })
        })
        .unwrap();
    assert_eq!(count, TOTAL, "raw scan saw every event ({bytes} bytes)");
    count as f64 / started.elapsed().as_secs_f64()
}

/// Events/s delivered and the process's CPU time per delivered event.
async fn catch_up(query: &EventQuery<Account>, subscribers: usize) -> (f64, String) {
    let (started, cpu_start) = (Instant::now(), cpu::process_cpu());
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut subscription = query.subscribe(1, EventFilter::all());
            tokio::spawn(async move {
                let mut sum = 0u64;
                for expected in 1..=TOTAL {
                    let event = subscription.next().await.unwrap().unwrap();
                    assert_eq!(event.offset, expected);
                    let BankEvent::Deposited { amount_cents, .. } = event.event;
                    sum += amount_cents;
                }
                sum
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let delivered = TOTAL * subscribers as u64;
    (
        delivered as f64 / started.elapsed().as_secs_f64(),
        cpu::per_op(cpu::process_cpu().saturating_sub(cpu_start), delivered),
    )
}

struct Live {
    written_per_s: f64,
    delivered_per_s: f64,
    lag_after_last_commit: Duration,
}

async fn live(
    backend: &Arc<dyn Backend>,
    query: &EventQuery<Account>,
    subscribers: usize,
    round: u64,
) -> Live {
    let head = query.highest_offset().unwrap();
    let target = head + LIVE_EVENTS;
    let started = Instant::now();
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut subscription = query.subscribe(head + 1, EventFilter::all());
            tokio::spawn(async move {
                loop {
                    let event = subscription.next().await.unwrap().unwrap();
                    if event.offset == target {
                        return Instant::now();
                    }
                }
            })
        })
        .collect();
    let backend = backend.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let mut store = Store::<Account>::with_backend(
            "accounts",
            &format!("live-{round}"),
            backend,
            Some(&KEY),
            true,
        )
        .unwrap();
        store.set_durability(Durability::Periodic);
        for batch in 0..LIVE_EVENTS / 100 {
            let events: Vec<_> = (0..100).map(|i| event(batch * 100 + i)).collect();
            store.persist_batch(&events).unwrap();
        }
        Instant::now()
    });
    let last_commit = writer.await.unwrap();
    let written_per_s = LIVE_EVENTS as f64 / (last_commit - started).as_secs_f64();
    let mut last_delivery = last_commit;
    for task in tasks {
        last_delivery = last_delivery.max(task.await.unwrap());
    }
    Live {
        written_per_s,
        delivered_per_s: LIVE_EVENTS as f64 / (last_delivery - started).as_secs_f64(),
        lag_after_last_commit: last_delivery - last_commit,
    }
}

fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else {
        format!("{:.0}k", r / 1e3)
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("rush read-side benchmark (cargo bench -p rush-actor --bench read_side_bench)");
    println!("machine: {}", machine());
    let dir = tempfile::tempdir().unwrap();
    // `RUSH_BENCH_NOLOG=1`: ours on sled without its write-ahead log.
    let with_log = std::env::var("RUSH_BENCH_NOLOG").as_deref() != Ok("1");
    let config = SledConfig {
        write_ahead_log: with_log,
        ..SledConfig::default()
    };
    println!(
        "engine: sled {} Rush's write-ahead log",
        if with_log { "with" } else { "without" }
    );
    let backend: Arc<dyn Backend> = Arc::new(SledManager::with_config(dir.path(), config).unwrap());
    let took = populate(&backend);
    println!(
        "setup: {TOTAL} events of {ENTITIES} entities, encrypted + compressed, written in {:.1} s",
        took.as_secs_f64()
    );
    if std::env::var("READ_SIDE_ONLY").as_deref() == Ok("projection") {
        // Profiling mode: the projection rows alone.
        let (built, rebuilt, _, _) = runtime.block_on(projection_rebuild(&backend));
        println!(
            "projection: {} ev/s, rebuild {} ev/s",
            rate(built),
            rate(rebuilt)
        );
        return;
    }
    let query = EventQuery::<Account>::new(backend.clone(), "accounts", Some(&KEY)).unwrap();
    let raw_cpu = cpu::process_cpu();
    let raw = raw_reads(&backend);
    let raw_cpu = cpu::per_op(cpu::process_cpu().saturating_sub(raw_cpu), TOTAL);
    let (one, one_cpu) = runtime.block_on(catch_up(&query, 1));
    let (ten, ten_cpu) = runtime.block_on(catch_up(&query, 10));
    let live_one = runtime.block_on(live(&backend, &query, 1, 1));
    let live_ten = runtime.block_on(live(&backend, &query, 10, 10));
    let (built, rebuilt, rows, head) = runtime.block_on(projection_rebuild(&backend));

    println!();
    println!(
        "{:<48} {:>12} {:>12} {:>7}   CPU per event: ours / raw",
        "operation", "ours", "raw sled", "ratio"
    );
    println!(
        "{:<48} {:>12} {:>12} {:>7}   - / {raw_cpu}",
        "raw reads of 1M events (log scan + get)",
        "-",
        format!("{} ev/s", rate(raw)),
        "-"
    );
    println!(
        "{:<48} {:>12} {:>12} {:>6.2}x   {one_cpu} / {raw_cpu}",
        "catch-up, 1 subscriber (decrypt + decode)",
        format!("{} ev/s", rate(one)),
        format!("{} ev/s", rate(raw)),
        one / raw
    );
    println!(
        "{:<48} {:>12} {:>12} {:>6.2}x   {ten_cpu} / {raw_cpu}",
        "catch-up, 10 subscribers (delivered in total)",
        format!("{} ev/s", rate(ten)),
        format!("{} ev/s", rate(raw)),
        ten / raw
    );
    for (n, live) in [(1, &live_one), (10, &live_ten)] {
        println!(
            "{:<48} {:>12} {:>12} {:>7}",
            format!("live, {n} subscriber(s): delivered per subscriber"),
            format!("{} ev/s", rate(live.delivered_per_s)),
            format!("{} ev/s", rate(live.written_per_s)),
            format!("{:.2}x", live.delivered_per_s / live.written_per_s)
        );
        println!(
            "{:<48} {:>12}",
            format!("live, {n} subscriber(s): lag after the last commit"),
            format!("{:.1} ms", live.lag_after_last_commit.as_secs_f64() * 1e3)
        );
    }
    println!(
        "{:<48} {:>12} {:>12} {:>6.2}x",
        format!("projection from offset 0, exactly-once ({head} ev)"),
        format!("{} ev/s", rate(built)),
        format!("{} ev/s", rate(one)),
        built / one
    );
    println!(
        "{:<48} {:>12} {:>12} {:>6.2}x",
        format!("projection rebuild() ({rows} rows cleared, replayed)"),
        format!("{} ev/s", rate(rebuilt)),
        format!("{} ev/s", rate(one)),
        rebuilt / one
    );
    println!();
    println!("projection rows compare with the 1-subscriber catch-up (same reads and decoding)");
    println!(
        "live rows compare with the writer's own rate (the 'raw sled' column there): 1.00x = subscribers keep up"
    );
}
