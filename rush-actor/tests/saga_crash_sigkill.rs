//! A process test of saga resumption: a child runs money transfers (debit, then credit)
//! between persistent bank accounts on sled and is SIGKILLed mid-saga; then a fresh child
//! reopens the folder, calls `resume_incomplete`, and checks that every saga finished,
//! that money is conserved, and that no account applied one saga command twice.
//!
//! Round 1 kills right after a step's command was applied and before the saga journaled
//! it (the step pauses after printing `applied`); later rounds kill at seeded random
//! points. Rounds stack on one folder. Replay a failure with `RUSH_CRASH_SEED=<seed>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

#[path = "support/bank.rs"]
mod bank;

use bank::{BankEvent, Transfer, TransferData, account_events, balance, open};
use rush_actor::{Persistence, PersistenceConfig, SagaOutcome, SagaStatus, Sagas, StepPhase};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 6;
const INITIAL: u64 = 1_000;
const TRANSFERS: usize = 30;
const ROUNDS: usize = 4;
const KEY: [u8; 32] = [5; 32];
const CHILD_DIR: &str = "RUSH_SAGA_CRASH_DIR";
const CHILD_MODE: &str = "RUSH_SAGA_CRASH_MODE";

fn main() {
    if let (Ok(dir), Ok(mode)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_MODE)) {
        child(&dir, &mode);
        return;
    }
    let seed: u64 = std::env::var("RUSH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5a6a_0001);
    println!("saga crash test: seed {seed}");
    let started = Instant::now();
    let mut rng = seed;
    let dir = tempfile::tempdir().unwrap();
    for round in 1..=ROUNDS {
        // Round 1: kill on the first applied command, while every step in flight waits
        // between its command and its journal write. Later rounds: anywhere.
        let (kill_after, pause) = if round == 1 {
            (1, true)
        } else {
            (1 + (xorshift(&mut rng) % 50) as usize, false)
        };
        let applied = run_until_killed(dir.path(), round, kill_after, pause);
        let report = match check(dir.path(), round) {
            Ok(report) => report,
            Err(problem) => {
                println!("round {round} failed (seed {seed}): {problem}");
                println!("0 passed, 1 failed");
                std::process::exit(1);
            }
        };
        if round == 1 && !report.contains("resumed 0 ") && !applied.is_empty() {
            println!("round 1: killed after {applied:?} was applied, before its saga journaled it");
        } else if round == 1 {
            println!("round 1 failed: no saga was in flight at the kill ({report})");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
        println!("round {round}: killed after {kill_after} applied commands; {report}");
    }
    println!(
        "{ROUNDS} passed, 0 failed ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Runs a transfer child; SIGKILLs it after `kill_after` `applied` lines. Returns the
/// last applied line seen.
fn run_until_killed(dir: &std::path::Path, round: usize, kill_after: usize, pause: bool) -> String {
    let mode = format!("run:{round}:{}", u8::from(pause));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .envs(engine_under_test::child_env())
        .env(CHILD_DIR, dir)
        .env(CHILD_MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut applied = 0;
    let mut last = String::new();
    while applied < kill_after {
        let Some(Ok(line)) = lines.next() else { break };
        if line.starts_with("applied") {
            applied += 1;
            last = line;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    last
}

/// Runs the checking child to completion: its last line is `ok ...` or `FAIL ...`.
fn check(dir: &std::path::Path, round: usize) -> Result<String, String> {
    let output = Command::new(std::env::current_exe().unwrap())
        .envs(engine_under_test::child_env())
        .env(CHILD_DIR, dir)
        .env(CHILD_MODE, format!("check:{round}"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("no output").to_owned();
    match last.strip_prefix("ok ") {
        Some(report) if output.status.success() => Ok(report.to_owned()),
        _ => Err(format!("{last} (status {})", output.status)),
    }
}

fn account(i: usize) -> String {
    format!("acct-{i}")
}

/// Transfer `i` of `round`: between two accounts, or (every 5th) to a missing account,
/// which refuses the credit and makes the saga refund the debit.
fn plan(round: usize, i: usize) -> (String, TransferData) {
    let from = i % ACCOUNTS;
    let to = if i % 5 == 4 {
        "ghost".to_owned()
    } else {
        account((from + 1 + (i * 7 + round) % (ACCOUNTS - 1)) % ACCOUNTS)
    };
    let amount = 1 + ((i * 37 + round * 11) % 50) as u64;
    (
        format!("r{round}-t{i}"),
        TransferData {
            from: account(from),
            to,
            amount,
        },
    )
}

async fn system(dir: &str) -> (Persistence, Sagas, Arc<dyn rush_store::Backend>) {
    let config = PersistenceConfig {
        encryption_key: Some(KEY.into()),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::at(dir), config)
        .await
        .unwrap();
    let sagas = Sagas::open(&persistence).unwrap();
    let backend = persistence.database().engine().unwrap();
    (persistence, sagas, backend)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn child(dir: &str, mode: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let parts: Vec<&str> = mode.split(':').collect();
    let round: usize = parts[1].parse().unwrap();
    runtime.block_on(async {
        if parts[0] == "run" {
            run(dir, round, parts[2] == "1").await;
        } else {
            match verify(dir, round).await {
                Ok(report) => say(&format!("ok {report}")),
                Err(problem) => {
                    say(&format!("FAIL {problem}"));
                    std::process::exit(1);
                }
            }
        }
    });
}

async fn run(dir: &str, round: usize, pause: bool) {
    let (persistence, sagas, _) = system(dir).await;
    sagas.register(Transfer {
        after_applied: Some(Arc::new(move |ctx| {
            say(&format!(
                "applied {} {} {}",
                ctx.saga_id(),
                ctx.step(),
                ctx.phase()
            ));
            if pause {
                Duration::from_secs(5)
            } else {
                Duration::ZERO
            }
        })),
    });
    for i in 0..ACCOUNTS {
        open(&persistence, &account(i), INITIAL).await; // a no-op once open
    }
    say("ready");
    let tasks: Vec<_> = (0..TRANSFERS)
        .map(|i| {
            let sagas = sagas.clone();
            tokio::spawn(async move {
                let (id, data) = plan(round, i);
                let outcome = sagas.start::<Transfer>(&id, data).await;
                say(&format!("done {id} {outcome:?}"));
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    say("finished");
    // Wait for the kill, as a busy process would.
    tokio::time::sleep(Duration::from_secs(30)).await;
}

/// Resumes, then checks every saga of rounds `1..=round` and every account.
async fn verify(dir: &str, round: usize) -> Result<String, String> {
    let (persistence, sagas, backend) = system(dir).await;
    sagas.register(Transfer::default());
    let resumed = sagas
        .resume_incomplete()
        .await
        .map_err(|e| format!("resume: {e}"))?;
    if let Some((id, outcome)) = resumed.iter().find(|(_, o)| !o.is_final()) {
        return Err(format!("{id} did not finish on resume: {outcome:?}"));
    }

    let mut journals: HashMap<String, Vec<BankEvent>> = HashMap::new();
    for i in 0..ACCOUNTS {
        let events = account_events(&backend, Some(&KEY), &account(i))
            .into_iter()
            .map(|e| e.event)
            .collect();
        journals.insert(account(i), events);
    }
    // No account applied one saga command twice.
    for (id, events) in &journals {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for event in events {
            if let BankEvent::Debited { key, .. } | BankEvent::Credited { key, .. } = event {
                *seen.entry(key).or_default() += 1;
            }
        }
        if let Some((key, n)) = seen.iter().find(|(_, n)| **n > 1) {
            return Err(format!("{id} applied {key} {n} times"));
        }
    }
    let applied = |account: &str, key: &str| {
        journals.get(account).is_some_and(|events| {
            events.iter().any(|e| {
                matches!(e, BankEvent::Debited { key: k, .. } | BankEvent::Credited { key: k, .. } if k == key)
            })
        })
    };

    let (mut completed, mut compensated, mut never_started) = (0, 0, 0);
    for r in 1..=round {
        for i in 0..TRANSFERS {
            let (id, data) = plan(r, i);
            let key = |step: &str, phase: StepPhase| format!("transfer/{id}/{step}/{phase}");
            let debited = applied(&data.from, &key("debit", StepPhase::Action));
            let refunded = applied(&data.from, &key("debit", StepPhase::Compensation));
            let credited = applied(&data.to, &key("credit", StepPhase::Action));
            match sagas
                .status::<Transfer>(&id)
                .await
                .map_err(|e| e.to_string())?
            {
                None => {
                    never_started += 1;
                    if debited || credited {
                        return Err(format!("{id} moved money without a journal"));
                    }
                }
                Some(SagaStatus::Finished(SagaOutcome::Completed)) => {
                    completed += 1;
                    if !(debited && credited && !refunded) {
                        return Err(format!(
                            "{id} completed: debited {debited}, credited {credited}, refunded {refunded}"
                        ));
                    }
                }
                Some(SagaStatus::Finished(SagaOutcome::Compensated { .. })) => {
                    compensated += 1;
                    if credited || debited != refunded {
                        return Err(format!(
                            "{id} compensated: debited {debited}, credited {credited}, refunded {refunded}"
                        ));
                    }
                }
                Some(other) => return Err(format!("{id} is not finished: {other:?}")),
            }
        }
    }
    let mut total = 0;
    for i in 0..ACCOUNTS {
        total += balance(&persistence, &account(i)).await;
    }
    if total != INITIAL * ACCOUNTS as u64 {
        return Err(format!(
            "money not conserved: {total} instead of {}",
            INITIAL * ACCOUNTS as u64
        ));
    }
    if !sagas
        .dead_letters()
        .list()
        .map_err(|e| e.to_string())?
        .is_empty()
    {
        return Err("dead letters left".into());
    }
    persistence.shutdown().await.unwrap();
    Ok(format!(
        "resumed {} sagas; {completed} completed, {compensated} compensated, {never_started} never started; total {total} conserved",
        resumed.len()
    ))
}
