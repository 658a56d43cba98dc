//! Health of a store: a real probe that writes, flushes, reads back and removes a key.

use crate::backend::{Backend, WriteBatch, WriteOp};
use crate::error::Result;
use std::time::{Duration, Instant};

/// Overall verdict of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// The database answers and accepts durable writes promptly.
    Healthy,
    /// It works, but slowly, or this handle refuses writes after a failure.
    Degraded,
    /// The probe failed.
    Unhealthy,
}

/// The result of [`Store::health_check`](crate::Store::health_check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The verdict.
    pub status: HealthStatus,
    /// A sentence saying why.
    pub message: String,
    /// How long the write-flush-read probe took.
    pub probe_latency: Duration,
}

/// A durable round trip slower than this is reported as degraded.
pub const SLOW_PROBE: Duration = Duration::from_secs(1);

/// Writes a probe value, flushes, reads it back and deletes it.
pub(crate) fn probe(
    backend: &dyn Backend,
    probe_key: &[u8],
    poisoned: Option<&str>,
) -> HealthReport {
    let started = Instant::now();
    let outcome = run_probe(backend, probe_key);
    let probe_latency = started.elapsed();
    let (status, message) = match (outcome, poisoned) {
        (Err(e), _) => (HealthStatus::Unhealthy, format!("probe failed: {e}")),
        (Ok(false), _) => (
            HealthStatus::Unhealthy,
            "probe read back a different value".to_owned(),
        ),
        (Ok(true), Some(why)) => (
            HealthStatus::Degraded,
            format!("database answers, but this handle refuses writes: {why}"),
        ),
        (Ok(true), None) if probe_latency > SLOW_PROBE => (
            HealthStatus::Degraded,
            format!("durable write took {probe_latency:?}"),
        ),
        (Ok(true), None) => (
            HealthStatus::Healthy,
            format!("durable write round trip in {probe_latency:?}"),
        ),
    };
    HealthReport {
        status,
        message,
        probe_latency,
    }
}

fn run_probe(backend: &dyn Backend, key: &[u8]) -> Result<bool> {
    let value = crate::journal::now_micros().to_be_bytes().to_vec();
    let put = WriteBatch {
        guards: Vec::new(),
        ops: vec![WriteOp::Put {
            key: key.to_vec(),
            value: value.clone(),
        }],
        ..Default::default()
    };
    if backend.commit(&put)?.is_err() {
        return Ok(false);
    }
    backend.flush()?;
    let read = backend.get(key)?;
    let delete = WriteBatch {
        guards: Vec::new(),
        ops: vec![WriteOp::Delete { key: key.to_vec() }],
        ..Default::default()
    };
    let _ = backend.commit(&delete)?;
    Ok(read.as_deref() == Some(value.as_slice()))
}
