//! `PERF_REPORT_ONLY=<row>`: one row of the report alone, to profile or measure it.
//! - `recovery`: the recovery row on sled, one database recovered 20 times (run it under
//!   perf: the recoveries outweigh the one population), then raw's median
//!   (`PERF_REPORT_RAW=0`: ours alone).
//! - `catch-up`: subscribers (`PERF_REPORT_SUBSCRIBERS`, 1 unless set) catching up together
//!   on sled, five times over one load, each time beside raw's as many readers
//!   (`PERF_REPORT_RAW=0`: ours alone, for a profile of ours only).
//! - `bytes`: the load of 1M events on each engine and raw, and the bytes each leaves on
//!   disk.
//! - `actors`: the 1,000-encrypted-actor row on sled, five times, each beside raw's spread
//!   batches (`PERF_REPORT_RAW=0`: ours alone), with the process CPU time per command.

use super::recovery::{populate_for_recovery, raw_recovery, recover_all};
use super::{
    ACTORS, ENGINES, Engine, actors_group_commit, catch_up, human, load_history, mib, raw_actors,
    raw_catch_up, raw_load_history,
};
use crate::bank_workload::BankEvent;
use crate::cpu;
use std::time::Instant;
use tokio::runtime::Runtime;

/// Runs the row `only` names (an unknown name says which exist).
pub fn run(only: &str, runtime: &Runtime, pool: &[BankEvent]) {
    match only {
        "recovery" => recovery(runtime, pool),
        "catch-up" => catch_up_only(runtime, pool),
        "bytes" => bytes(pool),
        "actors" => actors(runtime, pool),
        other => eprintln!("PERF_REPORT_ONLY={other}: use recovery, catch-up, bytes or actors"),
    }
}

fn with_raw() -> bool {
    std::env::var("PERF_REPORT_RAW").as_deref() != Ok("0")
}

fn recovery(runtime: &Runtime, pool: &[BankEvent]) {
    let dir = populate_for_recovery(Engine::SLED, pool);
    let mut times: Vec<_> = (0..20)
        .map(|_| runtime.block_on(recover_all(Engine::SLED, &dir)))
        .inspect(|ours| println!("recover {ACTORS} actors on sled: {} ms", ours.as_millis()))
        .collect();
    times.sort();
    if with_raw() {
        let raw = raw_recovery(pool);
        println!(
            "median {:.1} ms, raw {:.1} ms: {:.2}x raw's time",
            times[10].as_secs_f64() * 1e3,
            raw.as_secs_f64() * 1e3,
            times[10].as_secs_f64() / raw.as_secs_f64()
        );
    }
}

fn catch_up_only(runtime: &Runtime, pool: &[BankEvent]) {
    let subscribers = std::env::var("PERF_REPORT_SUBSCRIBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let (dir, _) = load_history(Engine::SLED, pool);
    let raw_dir = with_raw().then(|| raw_load_history(pool).0);
    for _ in 0..5 {
        let ours = runtime.block_on(catch_up(Engine::SLED, dir.path(), subscribers, true));
        let versus = raw_dir.as_ref().map_or_else(String::new, |raw_dir| {
            let raw = raw_catch_up(raw_dir.path(), subscribers);
            format!(", raw {} ({:.2}x)", human(raw), ours / raw)
        });
        println!(
            "catch-up, {subscribers} subscriber(s) on sled: {} per sub{versus}",
            human(ours)
        );
    }
}

fn bytes(pool: &[BankEvent]) {
    let (_, raw_bytes) = raw_load_history(pool);
    for kind in ENGINES {
        let started = Instant::now();
        let (_, bytes) = load_history(kind, pool);
        println!(
            "{}: {:.1} MiB, {:.2}x raw's {:.1} MiB, loaded in {:.1} s",
            kind.name(),
            mib(bytes),
            bytes as f64 / raw_bytes as f64,
            mib(raw_bytes),
            started.elapsed().as_secs_f64()
        );
    }
}

fn actors(runtime: &Runtime, pool: &[BankEvent]) {
    for _ in 0..5 {
        let cpu = cpu::process_cpu();
        let ours = runtime.block_on(actors_group_commit(Engine::SLED));
        let cpu = cpu::process_cpu() - cpu;
        let versus = if with_raw() {
            let raw = raw_actors(pool, true);
            format!(", raw {} ({:.2}x)", human(raw), ours / raw)
        } else {
            String::new()
        };
        // The CPU time covers the spawning and the shutdown too: compare runs, not rows.
        let per_command = cpu.as_secs_f64() / (ours * super::ACTORS_FOR.as_secs_f64());
        println!(
            "{ACTORS} encrypted actors on sled: {} cmd/s{versus}, process CPU {:.1} us/cmd",
            human(ours),
            per_command * 1e6
        );
    }
}
