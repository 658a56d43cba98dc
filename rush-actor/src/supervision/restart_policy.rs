//! How often a failed actor is restarted: at most `max_restarts` within `within`, each
//! after an exponential backoff with jitter, so that a crash loop neither spins the CPU nor
//! restarts thousands of actors in lockstep.

use super::backoff::{Backoff, jitter_unit};
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
    /// After the supervisor gave up on an entity, how long its commands are refused
    /// (`Unavailable`) before it is released from the entity table; its next command then
    /// starts it afresh, with a new restart budget. Keeps memory from growing with
    /// given-up entities. `Persistence::revive` releases one at once. (Entities only: a
    /// projection that was given up on is spawned again by hand.)
    pub cool_down: Duration,
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
            cool_down: Duration::from_secs(60),
        }
    }
}

impl RestartPolicy {
    /// The backoff before restart number `attempt` (0-based) in the window, given a random
    /// `unit` in [0, 1).
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        Backoff {
            initial: self.min_backoff,
            max: self.max_backoff,
            multiplier: self.multiplier,
            jitter: self.jitter,
        }
        .delay(attempt, unit)
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
        self.total = self.total.saturating_add(1);
        Some(policy.backoff(attempt, unit))
    }

    /// Records a failure that happened just now, with fresh jitter: what every supervisor
    /// (of entities, of projections) asks when a child fails.
    pub(crate) fn record_failure(&mut self, policy: &RestartPolicy) -> Option<Duration> {
        self.next(policy, Instant::now(), jitter_unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervision::backoff::jitter_unit;

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
