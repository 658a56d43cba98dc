//! CPU time of the whole process (every thread: ours, sled's, tokio's), for "CPU per
//! operation" beside rates: it holds better than wall time on a noisy machine. Linux only
//! (`/proc/self/stat`); elsewhere it reads 0 and the column shows "-".

use std::time::Duration;

/// User + system CPU time used by this process so far.
pub fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which is in parentheses and may hold spaces):
    // utime and stime are the 12th and 13th of them, in clock ticks (100 per second).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// `cpu` spread over `operations` (at least one).
pub fn per_each(cpu: Duration, operations: u64) -> Duration {
    cpu.checked_div(u32::try_from(operations.max(1)).unwrap_or(u32::MAX))
        .unwrap_or_default()
}

/// Microseconds of CPU per operation, as a table cell ("-" when unknown).
pub fn per_op(cpu: Duration, operations: u64) -> String {
    if cpu.is_zero() || operations == 0 {
        "-".into()
    } else {
        format!("{:.1} us", cpu.as_secs_f64() * 1e6 / operations as f64)
    }
}
