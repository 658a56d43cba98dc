//! Health of a database: a real probe that writes through the writer (durably), reads
//! back and removes a key.

use crate::backend::{WriteBatch, WriteOp};
use crate::database::Core;
use crate::error::{Error, Result};
use crate::store::Durability;
use std::sync::Arc;
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

/// A probe key (FORMAT.md) no other probe uses at the same time: the pseudo-entity
/// `rush.health/<process id>-<counter>`.
fn probe_key() -> Result<Vec<u8>> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Ok(crate::keys::EntityKey::new("rush.health", &id)?.probe_key())
}

/// Writes a probe value through the writer (durably), reads it back on the database's
/// threads and removes it. `poisoned`: the caller's handle refuses writes (degraded).
pub(crate) async fn probe_async(core: &Arc<Core>, poisoned: Option<&Error>) -> HealthReport {
    let started = Instant::now();
    let outcome = run_probe(core).await;
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

async fn run_probe(core: &Arc<Core>) -> Result<bool> {
    let key = probe_key()?;
    let value = crate::journal::now_micros().to_be_bytes().to_vec();
    let put = WriteBatch {
        ops: vec![WriteOp::Put {
            key: key.clone(),
            value: value.clone(),
        }],
        ..Default::default()
    };
    if core.write_async(put, Durability::Immediate).await?.is_err() {
        return Ok(false);
    }
    let read_key = key.clone();
    let read = core
        .read("health probe", move |engine| engine.get(&read_key))
        .await?;
    let delete = WriteBatch {
        ops: vec![WriteOp::Delete { key }],
        ..Default::default()
    };
    let _ = core.write_async(delete, Durability::Immediate).await?;
    Ok(read.as_deref() == Some(value.as_slice()))
}
