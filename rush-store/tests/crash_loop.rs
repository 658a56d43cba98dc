//! Crash loop: a writer process is SIGKILLed at a random moment, 20 times in a row, on the
//! same sled folder. The child writes several entities: single events, batches, snapshots,
//! and multi-entity commits (one batch for several entities, as the actors' group commit
//! does), and prints every acknowledged `entity seq`. After each kill the parent reopens the
//! folder and checks that every acknowledged event is there, unchanged, contiguous and
//! decodable, that `verify_integrity` is clean, that recovery gives the replayed state, and
//! that the collection log holds exactly one offset per stored event, 1..=N.
//!
//! `harness = false`: the same binary is the child when `RUSH_CRASH_LOOP_CHILD=<folder>`
//! is set. Replay a failure with `RUSH_CRASH_SEED=<seed>` (printed at the start).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/engine_under_test.rs"]
mod engine_under_test;

use rush_store::{Backend, Error, EventFilter, EventQuery, PersistentActor, Store};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "RUSH_CRASH_LOOP_CHILD";
/// The child's first line: opened and recovered, writing from now on.
const READY: &str = "ready";
const SEED_ENV: &str = "RUSH_CRASH_SEED";
const ROUNDS: usize = 20;
/// The kill comes up to this many milliseconds after the child is ready to write...
const MAX_DELAY_MS: u64 = 250;
/// ...except in one round of this many, where it comes while the child opens and recovers.
const KILL_DURING_OPEN_EVERY: u64 = 5;
const ENTITIES: [&str; 3] = ["alpha", "beta", "gamma"];
const MAX_BATCH: u64 = 6;
const COLLECTION: &str = "loop";
const KEY: [u8; 32] = *b"rush-store crash loop key 32 b!!";
/// The whole test must stay well inside this.
const BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum LoopEvent {
    Added {
        entity: String,
        seq: u64,
    },
    /// Long and repetitive: stored compressed.
    Noted(String),
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Tally {
    events: u64,
    sum: u64,
    notes: u64,
}

impl PersistentActor for Tally {
    type Event = LoopEvent;
    fn apply(&mut self, event: &LoopEvent) {
        self.events += 1;
        match event {
            LoopEvent::Added { seq, .. } => self.sum = self.sum.wrapping_add(*seq),
            LoopEvent::Noted(_) => self.notes += 1,
        }
    }
}

/// The event stored at `seq` of `entity`: a misplaced or altered event is told apart.
fn event_for(entity: &str, seq: u64) -> LoopEvent {
    if seq.is_multiple_of(5) {
        LoopEvent::Noted(format!("{entity} note {seq} ").repeat(10))
    } else {
        LoopEvent::Added {
            entity: entity.to_owned(),
            seq,
        }
    }
}

fn open_manager(dir: &Path) -> rush_store::Result<Arc<dyn Backend>> {
    // The previous process (or this one's last handle) may hold sled's lock a moment.
    let mut tries = 0;
    loop {
        match engine_under_test::try_at(dir) {
            Err(Error::DatabaseLocked { .. }) if tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn open_store(backend: &Arc<dyn Backend>, entity: &str) -> rush_store::Result<Store<Tally>> {
    Store::with_backend(COLLECTION, entity, backend.clone(), Some(&KEY), true)
}

// ---------------------------------------------------------------- child

fn child(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let backend: Arc<dyn Backend> = Arc::new(open_manager(dir)?);
    let mut stores = Vec::new();
    let mut states = Vec::new();
    for entity in ENTITIES {
        let store = open_store(&backend, entity)?;
        // Recovering also checks what the previous kill left.
        states.push(store.recover()?.unwrap_or_default());
        stores.push(store);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}")?;
    out.flush()?;
    for call in 0u64.. {
        let i = (call % ENTITIES.len() as u64) as usize;
        match call % 4 {
            // A single event, or a batch of one entity.
            0 | 1 => {
                let (store, state) = (&mut stores[i], &mut states[i]);
                let next = store.highest_sequence_number() + 1;
                let count = if call % 4 == 0 {
                    1
                } else {
                    2 + call % (MAX_BATCH - 1)
                };
                let events: Vec<LoopEvent> = (next..next + count)
                    .map(|s| event_for(ENTITIES[i], s))
                    .collect();
                let seq = store.persist_batch(&events)?;
                events.iter().for_each(|e| state.apply(e));
                writeln!(out, "{} {seq}", ENTITIES[i])?;
            }
            // Every entity at once, from its own thread: the database's writer commits
            // what waits together as one atomic batch with one flush (group commit).
            2 => {
                let written = std::thread::scope(|scope| {
                    let writers: Vec<_> = stores
                        .iter_mut()
                        .zip(ENTITIES)
                        .map(|(store, entity)| {
                            scope.spawn(move || {
                                let next = store.highest_sequence_number() + 1;
                                let events =
                                    vec![event_for(entity, next), event_for(entity, next + 1)];
                                store.persist_batch(&events).map(|seq| (seq, events))
                            })
                        })
                        .collect();
                    writers
                        .into_iter()
                        .map(|writer| writer.join().expect("writer thread"))
                        .collect::<Vec<_>>()
                });
                for ((state, outcome), entity) in states.iter_mut().zip(written).zip(ENTITIES) {
                    let (seq, events) = outcome?;
                    events.iter().for_each(|e| state.apply(e));
                    writeln!(out, "{entity} {seq}")?;
                }
            }
            // A snapshot (which also removes older ones).
            _ => stores[i].snapshot(&states[i])?,
        }
        out.flush()?;
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
}

/// Highest acknowledged sequence number per entity.
type Acked = BTreeMap<String, u64>;

/// Runs the child for `delay` (after it is ready, unless `during_open`), SIGKILLs it, and
/// returns what it acknowledged.
fn run_child(dir: &Path, delay: Duration, during_open: bool) -> Result<(Acked, usize), String> {
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .envs(engine_under_test::child_env())
        .env(CHILD_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn the child: {e}"))?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
    if !during_open {
        let mut ready = String::new();
        stdout
            .read_line(&mut ready)
            .map_err(|e| format!("read the child's output: {e}"))?;
        if ready.trim_end() != READY {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("child did not get ready: {ready:?}"));
        }
    }
    // A reader thread collects the output while this one sleeps; the kill closes the pipe.
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    std::thread::sleep(delay);
    let early = child.try_wait().map_err(|e| e.to_string())?;
    child.kill().map_err(|e| format!("kill: {e}"))?; // SIGKILL on Unix
    child.wait().map_err(|e| e.to_string())?;
    if let Some(status) = early {
        return Err(format!("the child stopped on its own: {status}"));
    }
    let bytes = reader.join().map_err(|_| "reader thread panicked")?;
    let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    let mut acked = Acked::new();
    let mut lines = 0;
    // Only complete lines count: a line the kill cut has no newline.
    for line in text
        .split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .filter(|l| *l != READY)
    {
        let parsed = line
            .split_once(' ')
            .and_then(|(e, s)| Some((e.to_owned(), s.parse::<u64>().ok()?)));
        let Some((entity, seq)) = parsed.filter(|(e, _)| ENTITIES.contains(&e.as_str())) else {
            return Err(format!("child printed {line:?}"));
        };
        let best = acked.entry(entity).or_default();
        if seq <= *best {
            return Err(format!("acknowledgements not increasing: {line}"));
        }
        *best = seq;
        lines += 1;
    }
    Ok((acked, lines))
}

/// Reopens the folder and checks everything; returns each entity's head.
fn verify(dir: &Path, acked: &Acked, previous: &Acked) -> Result<Acked, String> {
    let backend: Arc<dyn Backend> =
        Arc::new(open_manager(dir).map_err(|e| format!("reopen after the kill: {e}"))?);
    let mut heads = Acked::new();
    for entity in ENTITIES {
        let store = open_store(&backend, entity).map_err(|e| format!("{entity}: {e}"))?;
        let head = store.highest_sequence_number();
        let need = acked.get(entity).copied().unwrap_or(0);
        let before = previous.get(entity).copied().unwrap_or(0);
        if head < need || head < before {
            return Err(format!(
                "{entity}: head {head}, acknowledged {need}, previous head {before}"
            ));
        }
        // At most the one write in flight at the kill is stored unacknowledged.
        if head > need.max(before) + MAX_BATCH {
            return Err(format!("{entity}: head {head} beyond acknowledged {need}"));
        }
        let events = store
            .events(1, head)
            .map_err(|e| format!("{entity}: events: {e}"))?;
        let mut state = Tally::default();
        for (event, seq) in events.iter().zip(1..) {
            if *event != event_for(entity, seq) {
                return Err(format!("{entity}: event {seq} is {event:?}"));
            }
            state.apply(event);
        }
        if events.len() as u64 != head {
            return Err(format!("{entity}: {} events for head {head}", events.len()));
        }
        let recovered = store
            .recover()
            .map_err(|e| format!("{entity}: recover: {e}"))?
            .unwrap_or_default();
        if recovered != state {
            return Err(format!(
                "{entity}: recovered {recovered:?}, replay {state:?}"
            ));
        }
        let report = store
            .verify_integrity()
            .map_err(|e| format!("{entity}: verify: {e}"))?;
        if !report.is_ok() || report.events_checked != head {
            return Err(format!("{entity}: integrity {report:?}"));
        }
        heads.insert(entity.to_owned(), head);
    }
    // The collection log: offsets 1..=N, one per stored event, per entity in order.
    let query = EventQuery::<Tally>::new(backend.clone(), COLLECTION, Some(&KEY))
        .map_err(|e| e.to_string())?;
    let logged = query
        .events(1, &EventFilter::all())
        .map_err(|e| format!("query: {e}"))?;
    let total: u64 = heads.values().sum();
    if logged.len() as u64 != total || query.highest_offset().map_err(|e| e.to_string())? != total {
        return Err(format!(
            "log holds {} entries for {total} events",
            logged.len()
        ));
    }
    let mut next_seq: HashMap<&str, u64> = HashMap::new();
    for (event, offset) in logged.iter().zip(1u64..) {
        let entity = ENTITIES
            .iter()
            .find(|e| **e == event.entity_id)
            .ok_or(format!("log entry for unknown entity {}", event.entity_id))?;
        let expected = next_seq.entry(entity).or_default();
        *expected += 1;
        if event.offset != offset || event.sequence_number != *expected {
            return Err(format!(
                "log offset {} points at {} {} (expected offset {offset}, seq {expected})",
                event.offset, event.entity_id, event.sequence_number
            ));
        }
        if event.event != event_for(&event.entity_id, event.sequence_number) {
            return Err(format!("log offset {offset}: wrong event"));
        }
    }
    Ok(heads)
}

fn main() -> ExitCode {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        return match child(Path::new(&dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("crash loop child: {e}");
                ExitCode::from(2)
            }
        };
    }
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("crash_loop: seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = Rng(seed.max(1));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut heads = Acked::new();
    for round in 1..=ROUNDS {
        let during_open = rng.next().is_multiple_of(KILL_DURING_OPEN_EVERY);
        let delay = Duration::from_millis(rng.next() % (MAX_DELAY_MS + 1));
        let outcome = run_child(dir.path(), delay, during_open)
            .and_then(|(acked, lines)| Ok((verify(dir.path(), &acked, &heads)?, lines)));
        match outcome {
            Ok((new_heads, lines)) => {
                let when = if during_open {
                    "after start"
                } else {
                    "after ready"
                };
                println!(
                    "round {round}: killed {delay:?} {when}, {lines} acks, heads {new_heads:?}"
                );
                heads = new_heads;
            }
            Err(problem) => {
                eprintln!("crash_loop: round {round} failed: {problem}");
                eprintln!("crash_loop: replay with {SEED_ENV}={seed}");
                println!("0 passed, 1 failed");
                return ExitCode::FAILURE;
            }
        }
        if started.elapsed() > BUDGET {
            eprintln!("crash_loop: over its {BUDGET:?} budget after {round} rounds");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    }
    let total: u64 = heads.values().sum();
    println!(
        "crash_loop: {ROUNDS} kills, {total} events, {:.1?}",
        started.elapsed()
    );
    println!("1 passed, 0 failed");
    ExitCode::SUCCESS
}
