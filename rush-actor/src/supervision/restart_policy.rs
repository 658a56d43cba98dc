//! How often a failed actor is restarted: at most `max_restarts` within `within`, each
//! after an exponential backoff with jitter, so that a crash loop neither spins the CPU nor
//! restarts thousands of actors in lockstep.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Restart limits and backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartPolicy {
    /// Restarts allowed within `within`; one more and the supervisor gives up.
    pub max_restarts: u32,
    /// The sliding window restarts are counted in.
    pub within: Duration,
    /// Backoff before the first restart.
    pub min_backoff: Duration,
    /// Backoff never exceeds this.
    pub max_backoff: Duration,
    /// Each further restart in the window multiplies the backoff by this.
    pub multiplier: f64,
    /// Random spread of each backoff, as a fraction (0.2 = ±20%).
    pub jitter: f64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            within: Duration::from_secs(60),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl RestartPolicy {
    /// The backoff before restart number `attempt` (0-based) in the window, given a random
    /// `unit` in [0, 1).
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let base = self.min_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max_backoff.as_secs_f64());
        let spread = 1.0 + self.jitter.clamp(0.0, 1.0) * (2.0 * unit - 1.0);
        Duration::try_from_secs_f64((capped * spread).max(0.0)).unwrap_or(self.max_backoff)
    }
}

/// The restarts of one entity within the policy's window.
#[derive(Debug, Default)]
pub(crate) struct RestartHistory {
    recent: VecDeque<Instant>,
    pub(crate) total: u64,
}

impl RestartHistory {
    /// Records a failure at `now`: `Some(backoff)` to restart after, `None` to give up.
    pub(crate) fn next(
        &mut self,
        policy: &RestartPolicy,
        now: Instant,
        unit: f64,
    ) -> Option<Duration> {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.within)
        {
            self.recent.pop_front();
        }
        let attempt = u32::try_from(self.recent.len()).unwrap_or(u32::MAX);
        if attempt >= policy.max_restarts {
            return None;
        }
        self.recent.push_back(now);
        self.total += 1;
        Some(policy.backoff(attempt, unit))
    }

    /// Records a failure that happened just now, with fresh jitter: what every supervisor
    /// (of entities, of projections) asks when a child fails.
    pub(crate) fn record_failure(&mut self, policy: &RestartPolicy) -> Option<Duration> {
        self.next(policy, Instant::now(), jitter_unit())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let p = RestartPolicy {
            jitter: 0.0,
            ..RestartPolicy::default()
        };
        assert_eq!(p.backoff(0, 0.5), Duration::from_millis(100));
        assert_eq!(p.backoff(1, 0.5), Duration::from_millis(200));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(800));
        assert_eq!(p.backoff(20, 0.5), Duration::from_secs(10));
    }

    #[test]
    fn jitter_spreads_backoff_both_ways() {
        let p = RestartPolicy::default();
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(80));
        assert_eq!(p.backoff(0, 0.5), Duration::from_millis(100));
        assert!(p.backoff(0, 0.999) > Duration::from_millis(119));
        for _ in 0..100 {
            let u = jitter_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn gives_up_after_max_restarts_within_the_window() {
        let p = RestartPolicy {
            max_restarts: 3,
            within: Duration::from_secs(10),
            ..RestartPolicy::default()
        };
        let mut h = RestartHistory::default();
        let t0 = Instant::now();
        assert!(h.next(&p, t0, 0.5).is_some());
        assert!(h.next(&p, t0, 0.5).is_some());
        assert!(h.next(&p, t0, 0.5).is_some());
        assert!(h.next(&p, t0, 0.5).is_none());
        // Old failures leave the window.
        assert!(h.next(&p, t0 + Duration::from_secs(11), 0.5).is_some());
        assert_eq!(h.total, 4);
    }
}
