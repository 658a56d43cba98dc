//! Crash test: a child process persists events to a sled database as fast as it can and
//! is killed with SIGKILL at a random moment; the parent then reopens the folder and checks
//! that every acknowledged event survived, with no gap and no damaged record. Several
//! rounds run on the same folder, so crashes stack.
//!
//! This test has its own `main` (`harness = false`): the same binary is the child when
//! `RUSH_CRASH_CHILD=<folder>` is set. Replay a failure with `RUSH_CRASH_SEED=<seed>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/engine_under_test.rs"]
mod engine_under_test;

use rush_store::{PersistentActor, Store};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "RUSH_CRASH_CHILD";
const SEED_ENV: &str = "RUSH_CRASH_SEED";
const DEFAULT_SEED: u64 = 0x5EED_C4A5_4C0F_FEE1;
const ROUNDS: usize = 5;
/// Acknowledgements to wait for before the kill, per round: `MIN_ACKS..=MAX_ACKS`.
const MIN_ACKS: u64 = 50;
const MAX_ACKS: u64 = 300;
/// The largest `persist_batch` of the child.
const MAX_BATCH: u64 = 5;
const COLLECTION: &str = "crash";
const ENTITY: &str = "e-1";
const KEY: [u8; 32] = *b"rush-store crash test key 32 b!!";
/// A child that acknowledges nothing for this long is stuck.
const STALL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CrashEvent {
    Added(u64),
    /// Long and repetitive, so that it is stored compressed.
    Noted(String),
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Tally {
    events: u64,
    sum: u64,
    notes: u64,
    last_note: String,
}

impl PersistentActor for Tally {
    type Event = CrashEvent;

    fn apply(&mut self, event: &CrashEvent) {
        self.events += 1;
        match event {
            CrashEvent::Added(n) => self.sum = self.sum.wrapping_add(*n),
            CrashEvent::Noted(text) => {
                self.notes += 1;
                self.last_note.clone_from(text);
            }
        }
    }
}

/// The event the child stores at sequence number `seq`: the parent can tell a misplaced
/// or altered event from the right one.
fn event_for(seq: u64) -> CrashEvent {
    if seq.is_multiple_of(7) {
        CrashEvent::Noted(format!("note at {seq}: ").repeat(12))
    } else {
        CrashEvent::Added(seq)
    }
}

fn open_store(dir: &Path) -> rush_store::Result<Store<Tally>> {
    let manager = engine_under_test::try_at(dir)?;
    Store::<Tally>::new(COLLECTION, ENTITY, manager, Some(&KEY), true)
}

// ---------------------------------------------------------------- child

/// Persists forever, printing each acknowledged highest sequence number on its own line.
fn child(dir: &Path) -> ExitCode {
    match child_loop(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash child: {e}");
            ExitCode::from(2)
        }
    }
}

fn child_loop(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut store = open_store(dir)?;
    // Recovering on start also checks the state the previous crash left.
    let mut state = store.recover()?.unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    for call in 0u64.. {
        let next = store.highest_sequence_number() + 1;
        let acked = if call % 2 == 0 {
            let event = event_for(next);
            let seq = store.persist(&event)?;
            state.apply(&event);
            seq
        } else {
            let count = 2 + call % (MAX_BATCH - 1);
            let events: Vec<CrashEvent> = (next..next + count).map(event_for).collect();
            let seq = store.persist_batch(&events)?;
            for event in &events {
                state.apply(event);
            }
            seq
        };
        writeln!(stdout, "{acked}")?;
        stdout.flush()?;
        // Snapshots are crash points too (they also delete older snapshots).
        if call % 16 == 15 {
            store.snapshot(&state)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- parent

/// xorshift64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// Parses complete acknowledgement lines; a line without its newline was cut by the kill.
fn parse_acks(text: &str, acks: &mut Vec<u64>) -> Result<(), String> {
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        let seq = line
            .parse::<u64>()
            .map_err(|e| format!("child printed {line:?}: {e}"))?;
        acks.push(seq);
    }
    Ok(())
}

/// Waits for `target` acknowledgements (reading line by line), then kills the child.
fn read_until(
    child: &mut Child,
    stdout: &mut BufReader<ChildStdout>,
    target: u64,
) -> Result<Vec<u64>, String> {
    let mut acks = Vec::new();
    let started = Instant::now();
    let mut line = String::new();
    while (acks.len() as u64) < target {
        line.clear();
        let n = stdout
            .read_line(&mut line)
            .map_err(|e| format!("reading the child's output: {e}"))?;
        if n == 0 || !line.ends_with('\n') {
            let status = child.wait().map_err(|e| e.to_string())?;
            return Err(format!(
                "child stopped on its own after {} acknowledgements: {status}",
                acks.len()
            ));
        }
        parse_acks(&line, &mut acks)?;
        if started.elapsed() > STALL {
            return Err(format!(
                "child is too slow: {} acknowledgements",
                acks.len()
            ));
        }
    }
    Ok(acks)
}

fn round(dir: &Path, rng: &mut Rng, previous_head: u64) -> Result<u64, String> {
    let target = rng.between(MIN_ACKS, MAX_ACKS);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .envs(engine_under_test::child_env())
        .env(CHILD_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn the child: {e}"))?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
    let read = read_until(&mut child, &mut stdout, target);
    // SIGKILL, whatever happened: no child may outlive the round.
    let killed = child.kill();
    let status = child
        .wait()
        .map_err(|e| format!("wait for the child: {e}"))?;
    let mut acks = read?;
    killed.map_err(|e| format!("kill the child: {e}"))?;
    // Lines the child printed before it died were acknowledged too.
    let mut rest = String::new();
    stdout
        .read_to_string(&mut rest)
        .map_err(|e| format!("drain the child's output: {e}"))?;
    parse_acks(&rest, &mut acks)?;
    if acks.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("acknowledgements are not increasing: {acks:?}"));
    }
    let last_acked = *acks.last().ok_or("no acknowledgement")?;
    if acks[0] <= previous_head {
        return Err(format!(
            "child acknowledged {} but the journal already held {previous_head}",
            acks[0]
        ));
    }
    let head = verify(dir, last_acked, previous_head)?;
    println!(
        "round: killed after {} acks ({status}), last acked {last_acked}, journal head {head}",
        acks.len()
    );
    Ok(head)
}

/// Reopens the folder (the child is dead, so sled's lock is free) and checks it.
fn verify(dir: &Path, last_acked: u64, previous_head: u64) -> Result<u64, String> {
    let store = open_store(dir).map_err(|e| format!("reopen after the crash: {e}"))?;
    let head = store.highest_sequence_number();
    if head < last_acked {
        return Err(format!(
            "lost acknowledged events: head {head} < last acked {last_acked}"
        ));
    }
    // At most the one call in flight when the kill came can be stored unacknowledged.
    if head > last_acked + MAX_BATCH {
        return Err(format!(
            "head {head} is beyond the last acknowledgement {last_acked} + one batch"
        ));
    }
    let acked = store
        .events(1, last_acked)
        .map_err(|e| format!("events(1, {last_acked}): {e}"))?;
    if acked.len() as u64 != last_acked {
        return Err(format!(
            "events(1, {last_acked}) returned {} events",
            acked.len()
        ));
    }
    let all = store
        .events_with_metadata(0, u64::MAX)
        .map_err(|e| format!("events_with_metadata: {e}"))?;
    if all.len() as u64 != head {
        return Err(format!("{} events stored, head is {head}", all.len()));
    }
    let mut expected_state = Tally::default();
    for (envelope, seq) in all.iter().zip(1u64..) {
        if envelope.sequence_number != seq {
            return Err(format!(
                "gap: expected sequence number {seq}, found {}",
                envelope.sequence_number
            ));
        }
        if envelope.event != event_for(seq) {
            return Err(format!("event {seq} is {:?}", envelope.event));
        }
        expected_state.apply(&envelope.event);
    }
    let recovered = store
        .recover()
        .map_err(|e| format!("recover: {e}"))?
        .ok_or("recover found nothing")?;
    if recovered != expected_state {
        return Err(format!(
            "recovered {recovered:?}, replaying the events gives {expected_state:?}"
        ));
    }
    let snapshots = store
        .snapshot_sequence_numbers()
        .map_err(|e| format!("snapshots: {e}"))?;
    if snapshots.iter().any(|s| *s > head) {
        return Err(format!("snapshot beyond head {head}: {snapshots:?}"));
    }
    let report = store
        .verify_integrity()
        .map_err(|e| format!("verify_integrity: {e}"))?;
    if !report.is_ok() || report.events_checked != head {
        return Err(format!("integrity: {report:?}"));
    }
    if head < previous_head {
        return Err(format!("head went back from {previous_head} to {head}"));
    }
    Ok(head)
}

fn main() -> ExitCode {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    let seed = match std::env::var(SEED_ENV) {
        Ok(text) => match text.parse::<u64>() {
            Ok(seed) => seed,
            Err(e) => {
                eprintln!("{SEED_ENV}={text:?} is not a u64: {e}");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => DEFAULT_SEED,
    };
    // xorshift needs a non-zero state.
    let mut rng = Rng(seed.max(1));
    println!("crash_sigkill: seed {seed} (replay with {SEED_ENV}={seed})");
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("crash_sigkill: temporary folder: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let mut head = 0;
    let mut passed = 0;
    for n in 1..=ROUNDS {
        match round(dir.path(), &mut rng, head) {
            Ok(new_head) => {
                head = new_head;
                passed += 1;
            }
            Err(e) => {
                eprintln!("crash_sigkill: round {n} failed: {e}");
                eprintln!("crash_sigkill: seed {seed} (replay with {SEED_ENV}={seed})");
                println!("{passed} passed, 1 failed");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "crash_sigkill: {ROUNDS} rounds, {head} events, {:.1?}",
        started.elapsed()
    );
    println!("{passed} passed, 0 failed");
    ExitCode::SUCCESS
}
