//! Persistent actors on PostgreSQL against raw tokio-postgres doing the same inserts with
//! the same durability, in one run, on a throwaway server this benchmark starts (initdb
//! and pg_ctl into a temporary folder; `RUSH_TEST_POSTGRES_URL` points it at another).
//!
//! Run: `cargo bench -p rush-actor --bench postgres_bench`.
//!
//! Rows, each after a warm-up, for a fixed wall time:
//! 1. Rush: N persistent actors (default `PersistenceConfig`: `Durability::Immediate`,
//!    compression on, no encryption) on `PostgresManager`, each driven by its own task
//!    sending deposit commands one after another: durable commands/s.
//! 2. Raw: N tasks, each inserting one record of the same key and value size as Rush's
//!    event records per command, as its own durable transaction (`synchronous_commit =
//!    on`, autocommit), through a pool of as many connections as Rush's engine has,
//!    requests pipelined on each: the server's own group commit shares WAL flushes. This
//!    is the baseline of the ratio.
//! 3. Raw, batched (informational): the same records, 100 to a durable transaction, one
//!    transaction at a time per connection: a ceiling that needs the caller to batch.
//!
//! CPU per command counts the whole machine's busy time (the server's processes do most
//! of the work), beside this process's own.
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

#[path = "support/bank.rs"]
mod bank;
#[path = "support/measure.rs"]
mod measure;
#[path = "../../rush-store/tests/support/postgres_server.rs"]
mod postgres_server;

use bank::{Account, Cmd, account_id};
use measure::{CpuSample, cpu_sample, fmt_rate, load_average, machine_header, percentile};
use rush_actor::{EntityRef, Persistence, PersistenceConfig};
use rush_store::{Backend, PostgresConfig, PostgresManager};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);
const LEVELS: [usize; 2] = [100, 1000];
/// Connections of Rush's engine, and of the raw pool.
const CONNECTIONS: usize = 4;
const TARGET_RATIO: f64 = 0.7;
const TARGET_RATE: f64 = 10_000.0;

struct Row {
    what: String,
    clients: usize,
    commands: u64,
    rate: f64,
    p50: Duration,
    p99: Duration,
    machine_cpu_per_command: Duration,
    own_cpu_per_command: Duration,
}

fn row(
    what: &str,
    clients: usize,
    latencies: &mut [Duration],
    from: &CpuSample,
    to: &CpuSample,
) -> Row {
    latencies.sort_unstable();
    let commands = latencies.len() as u64;
    let per = |cpu: Duration| cpu.checked_div(commands.max(1) as u32).unwrap_or_default();
    let busy = Duration::from_millis(to.machine_busy.saturating_sub(from.machine_busy) * 10);
    Row {
        what: what.to_owned(),
        clients,
        commands,
        rate: commands as f64 / MEASURE.as_secs_f64(),
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        machine_cpu_per_command: per(busy),
        own_cpu_per_command: per(to.own.saturating_sub(from.own)),
    }
}

/// Drives `clients` tasks, each calling `command(client, n)` in a loop; returns the
/// latencies of replies inside the measured window and the CPU samples around it.
async fn drive<F, Fut>(clients: usize, command: F) -> (Vec<Duration>, CpuSample, CpuSample)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let command = Arc::new(command);
    let begin = Instant::now();
    let (from, to) = (begin + WARMUP, begin + WARMUP + MEASURE);
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let command = Arc::clone(&command);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0;
                loop {
                    let sent = Instant::now();
                    if sent >= to {
                        return latencies;
                    }
                    n += 1;
                    command(client, n).await;
                    let replied = Instant::now();
                    if replied >= from && replied <= to {
                        latencies.push(replied - sent);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep_until(from.into()).await;
    let cpu_from = cpu_sample();
    tokio::time::sleep_until(to.into()).await;
    let cpu_to = cpu_sample();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (latencies, cpu_from, cpu_to)
}

/// Opens a PostgreSQL engine on `schema` off the runtime's workers.
async fn engine(url: &str, schema: &str) -> Arc<PostgresManager> {
    let mut config = PostgresConfig::new(url, schema);
    config.connections = CONNECTIONS;
    let engine = tokio::task::spawn_blocking(move || PostgresManager::open(config))
        .await
        .unwrap()
        .unwrap();
    Arc::new(engine)
}

async fn rush_row(url: &str, actors: usize) -> (Row, f64, (usize, usize)) {
    let schema = format!("bench_rush_{actors}");
    let engine = engine(url, &schema).await;
    let backend: Arc<dyn Backend> = engine.clone();
    let persistence = Persistence::open_shared(backend, PersistenceConfig::default())
        .await
        .unwrap();
    let mut entities: Vec<EntityRef<Account>> = Vec::with_capacity(actors);
    for i in 0..actors {
        entities.push(
            persistence
                .get_or_spawn::<Account>(&account_id(i))
                .await
                .unwrap(),
        );
    }
    let entities = Arc::new(entities);
    let groups_before = persistence.group_commit_stats();
    let (mut latencies, from, to) = drive(actors, move |client, n| {
        let entities = Arc::clone(&entities);
        async move {
            entities[client]
                .ask(Cmd::Deposit {
                    account: account_id(client),
                    amount_cents: 100 + n % 900,
                    tag: n,
                })
                .await
                .expect("deposit");
        }
    })
    .await;
    let groups_after = persistence.group_commit_stats();
    let groups = groups_after.groups - groups_before.groups;
    let members = groups_after.writes - groups_before.writes;
    persistence.shutdown().await.unwrap();
    // The sizes of the records Rush wrote, for the raw rows.
    let sizes = raw_client(url, &schema)
        .await
        .query_one(
            "SELECT avg(length(key))::int, avg(length(value))::int FROM rush_records \
             WHERE get_byte(key, 0) = 1",
            &[],
        )
        .await
        .unwrap();
    let sizes: (i32, i32) = (sizes.get(0), sizes.get(1));
    let avg_group = members as f64 / groups.max(1) as f64;
    (
        row("rush actors", actors, &mut latencies, &from, &to),
        avg_group,
        (sizes.0 as usize, sizes.1 as usize),
    )
}

async fn raw_client(url: &str, schema: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}; \
             CREATE TABLE IF NOT EXISTS raw_events (key bytea PRIMARY KEY, value bytea NOT NULL); \
             SET synchronous_commit = on"
        ))
        .await
        .unwrap();
    client
}

/// A key of `len` bytes, unique per client and command.
fn raw_key(len: usize, client: usize, n: u64) -> Vec<u8> {
    let mut key = vec![1u8; len.max(16)];
    let at = key.len() - 16;
    key[at..at + 8].copy_from_slice(&(client as u64).to_be_bytes());
    key[at + 8..].copy_from_slice(&n.to_be_bytes());
    key
}

async fn raw_row(url: &str, clients: usize, sizes: (usize, usize)) -> Row {
    let schema = format!("bench_raw_{clients}");
    let mut pool = Vec::new();
    for _ in 0..CONNECTIONS {
        let connection = raw_client(url, &schema).await;
        let insert = connection
            .prepare("INSERT INTO raw_events VALUES ($1, $2)")
            .await
            .unwrap();
        pool.push((connection, insert));
    }
    let pool = Arc::new(pool);
    let value = Arc::new(vec![0x5Au8; sizes.1]);
    let (mut latencies, from, to) = drive(clients, move |client, n| {
        let pool = Arc::clone(&pool);
        let value = Arc::clone(&value);
        async move {
            let key = raw_key(sizes.0, client, n);
            let (connection, insert) = &pool[client % CONNECTIONS];
            connection.execute(insert, &[&key, &*value]).await.unwrap();
        }
    })
    .await;
    row(
        "raw, a durable insert each",
        clients,
        &mut latencies,
        &from,
        &to,
    )
}

async fn raw_batched_row(url: &str, sizes: (usize, usize)) -> Row {
    const BATCH: u64 = 100;
    let schema = "bench_raw_batched";
    let counter = Arc::new(AtomicU64::new(0));
    let mut pool = Vec::new();
    for _ in 0..CONNECTIONS {
        pool.push(Arc::new(tokio::sync::Mutex::new(
            raw_client(url, schema).await,
        )));
    }
    let pool = Arc::new(pool);
    let value = Arc::new(vec![0x5Au8; sizes.1]);
    let (latencies, from, to) = drive(CONNECTIONS, move |client, n| {
        let pool = Arc::clone(&pool);
        let value = Arc::clone(&value);
        let counter = Arc::clone(&counter);
        async move {
            let mut connection = pool[client].lock().await;
            let txn = connection.transaction().await.unwrap();
            let keys: Vec<Vec<u8>> = (0..BATCH)
                .map(|i| raw_key(sizes.0, client, n * BATCH + i))
                .collect();
            let values: Vec<&[u8]> = (0..BATCH).map(|_| value.as_slice()).collect();
            txn.execute(
                "INSERT INTO raw_events SELECT * FROM unnest($1::bytea[], $2::bytea[])",
                &[&keys, &values],
            )
            .await
            .unwrap();
            txn.commit().await.unwrap();
            counter.fetch_add(BATCH, Ordering::Relaxed);
        }
    })
    .await;
    // Each latency stands for a transaction of BATCH commands.
    let mut per_command: Vec<Duration> = latencies
        .iter()
        .flat_map(|l| std::iter::repeat_n(*l, BATCH as usize))
        .collect();
    row(
        "raw, 100 inserts per transaction",
        CONNECTIONS,
        &mut per_command,
        &from,
        &to,
    )
}

fn fmt_cpu(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("rush on PostgreSQL (cargo bench -p rush-actor --bench postgres_bench)");
    println!("{}", machine_header());
    println!(
        "server: a throwaway PostgreSQL on 127.0.0.1 ({}), default settings (fsync on); \
         load average at start {}",
        server_version(&runtime, &server.url),
        load_average()
    );
    println!(
        "each row: {} s warm-up, {} s measured; durable: every reply after its WAL flush",
        WARMUP.as_secs(),
        MEASURE.as_secs()
    );
    // `RUSH_BENCH_CLIENTS=100,1000` chooses the levels.
    let levels: Vec<usize> = std::env::var("RUSH_BENCH_CLIENTS").map_or_else(
        |_| LEVELS.to_vec(),
        |v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
    );
    let mut rows = Vec::new();
    for actors in levels {
        eprintln!("running {actors} clients ...");
        let (ours, avg_group, sizes) = runtime.block_on(rush_row(&server.url, actors));
        let raw = runtime.block_on(raw_row(&server.url, actors, sizes));
        rows.push((ours, avg_group, sizes, raw));
    }
    let sizes = rows.last().map_or((40, 120), |r| r.2);
    let batched = runtime.block_on(raw_batched_row(&server.url, sizes));
    println!();
    println!(
        "{:<34} {:>7} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>8}",
        "row",
        "clients",
        "commands",
        "cmds/s",
        "p50",
        "p99",
        "CPU/cmd all",
        "CPU/cmd us",
        "ours/raw"
    );
    let print = |r: &Row, ratio: Option<f64>| {
        println!(
            "{:<34} {:>7} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>8}",
            r.what,
            r.clients,
            r.commands,
            fmt_rate(r.rate),
            fmt_ms(r.p50),
            fmt_ms(r.p99),
            fmt_cpu(r.machine_cpu_per_command),
            fmt_cpu(r.own_cpu_per_command),
            ratio.map_or_else(|| "-".into(), |x| format!("{x:.2}x")),
        );
    };
    for (ours, avg_group, _, raw) in &rows {
        print(raw, None);
        print(ours, Some(ours.rate / raw.rate));
        println!("{:<34} average group commit: {avg_group:.1} commands", "");
    }
    print(&batched, None);
    println!();
    println!(
        "records: key {} B, value {} B (Rush's event records, compressed, not encrypted)",
        sizes.0, sizes.1
    );
    if let Some((ours, _, _, raw)) = rows.last() {
        let ratio = ours.rate / raw.rate;
        println!(
            "targets at 1,000 actors: >= {TARGET_RATIO}x raw: {ratio:.2}x ({}); \
             >= {} durable commands/s: {} ({})",
            if ratio >= TARGET_RATIO {
                "met"
            } else {
                "NOT met"
            },
            fmt_rate(TARGET_RATE),
            fmt_rate(ours.rate),
            if ours.rate >= TARGET_RATE {
                "met"
            } else {
                "NOT met"
            },
        );
    }
}

fn server_version(runtime: &tokio::runtime::Runtime, url: &str) -> String {
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let row = client.query_one("SHOW server_version", &[]).await.unwrap();
        format!("PostgreSQL {}", row.get::<_, String>(0))
    })
}
