//! Issue 13's honest competitor: what a good engineer writes in an afternoon instead of
//! Rush. A writer on a thread of its own with group commit: every client waiting at that
//! moment goes into one durable commit, replies after it. Each client keeps its aggregate
//! (balance, sequence number) in memory, decides, sends its event (the same bincode
//! `BankEvent` Rush journals), awaits the reply and applies the event, one command at a
//! time, as an actor would.
//!
//! Two stores under the same writer and clients: rusqlite (bundled SQLite, WAL,
//! `synchronous = FULL`), the competitor, and sled (one `apply_batch` of the group's
//! events under Rush's key shape, `flush`, `sync_data` of its `db` file), the same
//! afternoon's writer on Rush's default engine. The second separates what the engine
//! costs from what Rush costs.
#![allow(dead_code)]

use super::bank::deposited;
use super::measure::cpu::per_op;
use super::measure::{CpuSample, cpu_sample, fmt_dur, fmt_rate, other_cpu, percentile};
use super::{record_key, sled_config};
use rusqlite::{Connection, params};
use std::fs::File;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The store a hand-written writer commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Sled,
}

/// One event on its way to the writer, and where its outcome goes.
struct Write {
    account: String,
    seq: u64,
    payload: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

/// One row of the baseline table.
pub struct WriterRow {
    pub store: Store,
    pub clients: usize,
    pub commands: u64,
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Transactions of the whole run (warm-up included) and the writes in them.
    pub groups: u64,
    pub writes: u64,
    pub other_cpu: f64,
    pub cpu_per_command: Duration,
    /// The store's durability settings (SQLite's as it reports them).
    pub settings: String,
}

/// Opens the SQLite database, sets and reads back its durability settings.
fn open_sqlite(path: &std::path::Path) -> (Connection, String) {
    let db = Connection::open(path).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    db.execute_batch("PRAGMA synchronous = FULL;").unwrap();
    let sync: i64 = db
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    let version: String = db
        .query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .unwrap();
    db.execute_batch(
        "CREATE TABLE events (account TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
         PRIMARY KEY (account, seq)) WITHOUT ROWID;",
    )
    .unwrap();
    let sync_name = match sync {
        2 => "FULL",
        3 => "EXTRA",
        1 => "NORMAL",
        _ => "OFF",
    };
    (
        db,
        format!("SQLite {version}, journal_mode={mode}, synchronous={sync_name}"),
    )
}

/// Where the writer commits a group, durably, in one transaction.
enum Sink {
    Sqlite(Connection),
    Sled { db: sled::Db, file: File },
}

impl Sink {
    fn open(store: Store, dir: &std::path::Path) -> (Self, String) {
        match store {
            Store::Sqlite => {
                let (db, settings) = open_sqlite(&dir.join("bank.db"));
                (Sink::Sqlite(db), settings)
            }
            Store::Sled => {
                let db = sled_config(dir).open().unwrap();
                let file = File::open(dir.join("db")).unwrap();
                let settings = "sled 0.34.7: apply_batch + flush + sync_data(db) per group";
                (Sink::Sled { db, file }, settings.to_owned())
            }
        }
    }

    fn commit(&mut self, group: &[Write]) -> Result<(), String> {
        match self {
            Sink::Sqlite(db) => (|| -> rusqlite::Result<()> {
                let tx = db.transaction()?;
                {
                    let mut insert = tx.prepare_cached(
                        "INSERT INTO events (account, seq, payload) VALUES (?1, ?2, ?3)",
                    )?;
                    for w in group {
                        insert.execute(params![w.account, w.seq as i64, w.payload])?;
                    }
                }
                tx.commit()
            })()
            .map_err(|e| e.to_string()),
            Sink::Sled { db, file } => {
                let mut batch = sled::Batch::default();
                for w in group {
                    batch.insert(record_key(1, &w.account, Some(w.seq)), w.payload.as_slice());
                }
                db.apply_batch(batch).map_err(|e| e.to_string())?;
                db.flush().map_err(|e| e.to_string())?;
                file.sync_data().map_err(|e| e.to_string())
            }
        }
    }
}

/// The writer thread: waits for a write, takes every other one queued, commits them in one
/// transaction, answers each. Returns the groups and writes when every sender is gone.
fn writer(sink: &mut Sink, writes: &mpsc::Receiver<Write>) -> (u64, u64) {
    let (mut groups, mut members) = (0u64, 0u64);
    let mut group = Vec::new();
    while let Ok(first) = writes.recv() {
        group.push(first);
        group.extend(writes.try_iter());
        let outcome = sink.commit(&group);
        groups += 1;
        members += group.len() as u64;
        for w in group.drain(..) {
            let _ = w.done.send(outcome.clone());
        }
    }
    (groups, members)
}

/// `clients` clients for `warmup` + `measure`, counting the replies inside the window.
pub async fn writer_row(
    store: Store,
    clients: usize,
    warmup: Duration,
    measure: Duration,
) -> WriterRow {
    let dir = tempfile::tempdir().unwrap();
    let (mut sink, settings) = Sink::open(store, dir.path());
    let (send, writes) = mpsc::channel::<Write>();
    let writer_thread = std::thread::spawn(move || writer(&mut sink, &writes));

    let begin = Instant::now();
    let measure_from = begin + warmup;
    let measure_to = measure_from + measure;
    let drivers: Vec<_> = (0..clients)
        .map(|i| {
            let send = send.clone();
            tokio::spawn(async move {
                let account = format!("acc-{i:05}");
                let (mut balance, mut seq) = (0u64, 0u64);
                let mut latencies = Vec::with_capacity(4096);
                loop {
                    let sent = Instant::now();
                    if sent >= measure_to {
                        break;
                    }
                    // Decide (the same validation as the actor), encode, write, apply.
                    let amount = 100 + ((seq + 1) % 900);
                    let event = deposited(&account, amount, seq + 1);
                    let payload =
                        bincode::serde::encode_to_vec(&event, bincode::config::standard()).unwrap();
                    let (done, replied) = oneshot::channel();
                    send.send(Write {
                        account: account.clone(),
                        seq: seq + 1,
                        payload,
                        done,
                    })
                    .unwrap();
                    replied.await.unwrap().unwrap();
                    seq += 1;
                    balance += amount;
                    let replied = Instant::now();
                    if replied >= measure_from && replied <= measure_to {
                        latencies.push(replied - sent);
                    }
                }
                std::hint::black_box(balance);
                latencies
            })
        })
        .collect();
    drop(send);

    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_from: CpuSample = cpu_sample();
    tokio::time::sleep_until(measure_to.into()).await;
    let cpu_to = cpu_sample();
    let mut latencies = Vec::new();
    for d in drivers {
        latencies.extend(d.await.unwrap());
    }
    let (groups, writes) = tokio::task::spawn_blocking(move || writer_thread.join().unwrap())
        .await
        .unwrap();
    latencies.sort_unstable();
    let commands = latencies.len() as u64;
    WriterRow {
        store,
        clients,
        commands,
        rate: commands as f64 / measure.as_secs_f64(),
        settings,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        groups,
        writes,
        other_cpu: other_cpu(cpu_from, cpu_to),
        cpu_per_command: super::measure::cpu::per_each(
            cpu_to.own.saturating_sub(cpu_from.own),
            commands,
        ),
    }
}

/// Table 1b: the writer's rows on SQLite and on sled beside the actors' of the same run,
/// given as (cmds/s, CPU per command) per level, on sled (with its write-ahead log, the
/// default), on sled without the log and on redb.
pub fn print_table(
    sqlite: &[WriterRow],
    by_hand_sled: &[WriterRow],
    sled: &[(f64, Duration)],
    sled_nolog: &[(f64, Duration)],
    redb: &[(f64, Duration)],
) {
    println!(
        "== 1b. Baseline: a hand-written group-commit writer ({}; and {}) ==",
        sqlite.first().map_or("", |r| r.settings.as_str()),
        by_hand_sled.first().map_or("", |r| r.settings.as_str())
    );
    println!(
        "{:<7} {:>9} {:>9} {:>9} {:>8} | {:>9} {:>9} {:>9} {:>8} | {:>10} {:>9} {:>10} | {:>10} {:>9} | {:>10} {:>9} | {:>6}",
        "clients",
        "SQLite/s",
        "CPU/cmd",
        "p50",
        "avg grp",
        "by hand",
        "CPU/cmd",
        "p50",
        "/SQLite",
        "sled/sqlite",
        "sled CPU",
        "sled/hand",
        "nolog/sqlite",
        "nolog CPU",
        "redb/sqlite",
        "redb CPU",
        "other"
    );
    for ((((q, h), s), w), r) in sqlite
        .iter()
        .zip(by_hand_sled)
        .zip(sled)
        .zip(sled_nolog)
        .zip(redb)
    {
        let avg_group = q.writes as f64 / q.groups.max(1) as f64;
        println!(
            "{:<7} {:>9} {:>9} {:>9} {:>8.1} | {:>9} {:>9} {:>9} {:>7.2}x | {:>9.2}x {:>9} {:>9.2}x | {:>9.2}x {:>9} | {:>9.2}x {:>9} | {:>5.0}%",
            q.clients,
            fmt_rate(q.rate),
            per_op(q.cpu_per_command, 1),
            fmt_dur(q.p50),
            avg_group,
            fmt_rate(h.rate),
            per_op(h.cpu_per_command, 1),
            fmt_dur(h.p50),
            h.rate / q.rate,
            s.0 / q.rate,
            per_op(s.1, 1),
            s.0 / h.rate,
            w.0 / q.rate,
            per_op(w.1, 1),
            r.0 / q.rate,
            per_op(r.1, 1),
            q.other_cpu.max(h.other_cpu) * 100.0
        );
    }
    println!(
        "(each client keeps its account in memory, decides, sends its bincode event to one \
         writer thread and awaits its reply; the writer commits every write waiting at that \
         moment in one transaction: SQLite, or by hand on sled under Rush's key shape. \
         CPU/cmd: this process's CPU time, every thread, per reply; avg grp: SQLite's over \
         the whole run; sled/sqlite, sled/hand, nolog/sqlite and redb/sqlite: actors' cmds/s \
         of table 1, unencrypted (sled: with its write-ahead log, the default; nolog: \
         without it), over the writers'; \
         other: the larger of the two writers' windows)"
    );
    println!();
}
