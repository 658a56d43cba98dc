//! What the benchmarks measure with beside wall time: the machine, CPU time (this
//! process's and the whole machine's, to tell how much other processes took), percentiles
//! and table cells.
#![allow(dead_code)]

#[path = "../../../rush-store/benches/support/cpu.rs"]
pub mod cpu;

use std::path::Path;
use std::time::{Duration, Instant};

pub fn machine_header() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or("unknown CPU")
        .to_owned();
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let available = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024);
    let tmp = std::env::temp_dir();
    let fs = filesystem_of(&tmp);
    format!(
        "machine: {model}, {processors} logical cores in /proc/cpuinfo ({available} available), \
         {mem_mib} MiB RAM\n\
         storage: temp dirs under {} ({fs}); sled 0.34.7, redb 4.6; tokio multi-thread runtime, 2 workers",
        tmp.display()
    )
}

/// The filesystem type of the longest mount point containing `path`.
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, at, kind) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(at)
                .then(|| (at.len(), format!("{kind} on {dev}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown fs".into(), |(_, s)| s)
}

/// CPU time of the whole machine and of this process, to tell how much of a measured
/// window other processes took (this machine is shared: builds and tests of other work
/// make the figures incomparable).
#[derive(Clone, Copy)]
pub struct CpuSample {
    /// Busy ticks of all cores (user, nice, system, irq, softirq), from `/proc/stat`.
    pub machine_busy: u64,
    /// Ticks stolen by the hypervisor.
    pub steal: u64,
    /// CPU time of this process (every thread).
    pub own: Duration,
    pub at: Instant,
}

/// Linux reports CPU time in USER_HZ ticks, 100 per second on x86-64.
const TICKS_PER_SECOND: f64 = 100.0;

pub fn cpu_sample() -> CpuSample {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let field = |i: usize| cpu.get(i).copied().unwrap_or(0);
    CpuSample {
        machine_busy: field(0) + field(1) + field(2) + field(5) + field(6),
        steal: field(7),
        own: cpu::process_cpu(),
        at: Instant::now(),
    }
}

/// `cpu` in `/proc/stat`'s ticks.
pub fn ticks(cpu: Duration) -> u64 {
    (cpu.as_secs_f64() * TICKS_PER_SECOND) as u64
}

/// Share of the machine's cores (0..1) busy with other processes (and stolen by the
/// hypervisor) between two samples.
pub fn other_cpu(from: CpuSample, to: CpuSample) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
    let capacity = (to.at - from.at).as_secs_f64() * TICKS_PER_SECOND * cores;
    let foreign = (to.machine_busy.saturating_sub(from.machine_busy)
        + to.steal.saturating_sub(from.steal))
    .saturating_sub(ticks(to.own.saturating_sub(from.own)));
    if capacity <= 0.0 {
        0.0
    } else {
        (foreign as f64 / capacity).min(1.0)
    }
}

/// The 1-minute load average: above ~0.5 before the run, something else competes for
/// the two cores and the figures are not comparable.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn fmt_dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} us")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

pub fn fmt_rate(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.1}k", r / 1000.0)
    } else {
        format!("{r:.0}")
    }
}
