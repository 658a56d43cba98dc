//! Exponential backoff with jitter, shared by restarts (`RestartPolicy`) and saga retries
//! (`RetryPolicy`): one formula, so both spread their load the same way.

use std::time::Duration;

/// The shape of a backoff: `initial * multiplier^attempt`, capped at `max`, then spread by
/// ±`jitter` (a fraction, clamped to [0, 1]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) multiplier: f64,
    pub(crate) jitter: f64,
}

impl Backoff {
    /// The delay before attempt number `attempt` (0-based), given a random `unit` in
    /// [0, 1): 0.5 is the undisturbed delay, 0 the shortest, 1 the longest.
    pub(crate) fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let base = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max.as_secs_f64());
        let spread = 1.0 + self.jitter.clamp(0.0, 1.0) * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::try_from_secs_f64((capped * spread).max(0.0)).unwrap_or(self.max)
    }
}

/// A small, seedless random source for jitter (xorshift over the clock): jitter needs to
/// differ between actors, not to be unpredictable.
pub(crate) fn jitter_unit() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut x =
        STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ nanos ^ 0x2545_F491_4F6C_DD1D;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    #[expect(clippy::cast_precision_loss, reason = "53 random bits are plenty")]
    let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
    unit
}
