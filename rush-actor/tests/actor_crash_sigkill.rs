//! A process test: a child runs persistent actors under load on sled and prints every
//! acknowledged command; the parent SIGKILLs it at a seeded random moment, reopens the
//! folder, and checks that every acknowledged event is there with contiguous sequence
//! numbers. Several rounds on one folder, so crashes stack. Replay a failure with
//! `RUSH_CRASH_SEED=<seed>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

#[path = "support/account.rs"]
mod account;

use account::{Account, AccountEvent, Cmd, deposit};
use rush_actor::{Persistence, PersistenceConfig, SnapshotPolicy};
use rush_store::Store;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const ENTITIES: usize = 20;
const ROUNDS: usize = 4;
const CHILD_ENV: &str = "RUSH_ACTOR_CRASH_CHILD";

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let seed: u64 = std::env::var("RUSH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0001);
    println!("actor crash test: seed {seed}");
    let mut rng = seed;
    let dir = tempfile::tempdir().unwrap();
    for round in 1..=ROUNDS {
        let kill_after = 100 + (xorshift(&mut rng) % 600) as usize;
        let acked = run_child_until(dir.path(), kill_after);
        if let Err(problem) = check(dir.path(), &acked) {
            println!("round {round} failed (seed {seed}): {problem}");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
        let total: u64 = acked.values().sum();
        println!(
            "round {round}: killed after {kill_after} acks; {total} acknowledged tags all durable and contiguous"
        );
    }
    println!("{ROUNDS} passed, 0 failed");
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Runs the child, reads `entity tag` lines, kills it after `kill_after` of them.
/// Returns the highest acknowledged tag per entity.
fn run_child_until(dir: &std::path::Path, kill_after: usize) -> HashMap<usize, u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .envs(engine_under_test::child_env())
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked: HashMap<usize, u64> = HashMap::new();
    let mut count = 0;
    while count < kill_after {
        let Some(Ok(line)) = lines.next() else { break };
        let mut parts = line.split_whitespace();
        let (Some(e), Some(t)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (entity, tag): (usize, u64) = (e.parse().unwrap(), t.parse().unwrap());
        let best = acked.entry(entity).or_default();
        *best = (*best).max(tag);
        count += 1;
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Lines already in the pipe were acknowledged before the kill.
    for line in lines.map_while(Result::ok) {
        let mut parts = line.split_whitespace();
        if let (Some(Ok(entity)), Some(Ok(tag))) = (
            parts.next().map(str::parse::<usize>),
            parts.next().map(str::parse::<u64>),
        ) {
            let best = acked.entry(entity).or_default();
            *best = (*best).max(tag);
        }
    }
    acked
}

fn check(dir: &std::path::Path, acked: &HashMap<usize, u64>) -> Result<(), String> {
    let manager = engine_under_test::at(dir);
    for entity in 0..ENTITIES {
        let store = Store::<Account>::new(
            "accounts",
            &format!("e{entity}"),
            manager.clone(),
            Some(&KEY),
            true,
        )
        .map_err(|e| e.to_string())?;
        let report = store.verify_integrity().map_err(|e| e.to_string())?;
        if !report.is_ok() {
            return Err(format!("e{entity}: {:?}", report.integrity_errors));
        }
        let tags: Vec<u64> = store
            .events(0, u64::MAX)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|e| match e {
                AccountEvent::Deposited { tag, .. } => *tag,
                _ => 0,
            })
            .collect();
        let expected: Vec<u64> = (1..=tags.len() as u64).collect();
        if tags != expected {
            return Err(format!("e{entity}: tags are not 1..=n in order"));
        }
        let need = acked.get(&entity).copied().unwrap_or(0);
        if (tags.len() as u64) < need {
            return Err(format!(
                "e{entity}: acknowledged tag {need} but only {} events are durable",
                tags.len()
            ));
        }
        let recovered = store
            .recover()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        if recovered.balance != tags.len() as u64 {
            return Err(format!(
                "e{entity}: recovered balance {} for {} events",
                recovered.balance,
                tags.len()
            ));
        }
    }
    Ok(())
}

const KEY: [u8; 32] = [9; 32];

fn child(dir: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = PersistenceConfig {
            encryption_key: Some(KEY.into()),
            snapshots: SnapshotPolicy::every(25),
            ..PersistenceConfig::default()
        };
        let persistence = Persistence::open(engine_under_test::at(dir), config)
            .await
            .unwrap();
        let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let tasks: Vec<_> = (0..ENTITIES)
            .map(|e| {
                let entity = persistence.entity::<Account>(&format!("e{e}"));
                let out = out.clone();
                tokio::spawn(async move {
                    // Each deposit is 1, so the recovered balance is the last durable tag.
                    let mut tag = entity.ask(Cmd::Balance).await.unwrap();
                    loop {
                        tag += 1;
                        entity.ask(deposit(1, tag)).await.unwrap();
                        let mut out = out.lock().unwrap();
                        writeln!(out, "{e} {tag}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
}
