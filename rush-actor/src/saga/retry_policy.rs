//! How often a saga command that failed for a transient reason is tried again: at most
//! `max_retries` more times, after an exponential backoff with jitter (the same formula as
//! [`RestartPolicy`](crate::RestartPolicy)), so that a saga waiting on an overloaded or
//! restarting entity neither hammers it nor retries in lockstep with its siblings.

use crate::supervision::backoff::Backoff;
use std::time::Duration;

/// Retries of a saga step's action or compensation after a [`StepError::Retryable`]
/// failure.
///
/// A command is tried `1 + max_retries` times in all; when every try failed, the saga is
/// parked on a dead letter.
///
/// ```
/// use rush_actor::RetryPolicy;
/// use std::time::Duration;
/// let policy = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
/// assert_eq!(policy.delay(0, 0.5), Duration::from_millis(100));
/// assert_eq!(policy.delay(1, 0.5), Duration::from_millis(200));
/// ```
///
/// [`StepError::Retryable`]: crate::StepError::Retryable
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Tries after the first one; 0 parks the saga on the first transient failure.
    pub max_retries: u32,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// No delay exceeds this (before jitter).
    pub max_delay: Duration,
    /// Each further retry multiplies the delay by this (at least 1).
    pub multiplier: f64,
    /// Random spread of each delay, as a fraction (0.2 = ±20%).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 3 retries after 100 ms, 200 ms, 400 ms (±20%), never more than 5 s apart.
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// No retries at all: the first transient failure parks the saga.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The delay before retry number `attempt` (0-based: 0 is the first retry), given a
    /// random `unit` in [0, 1) (0.5 gives the undisturbed delay).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        Backoff {
            initial: self.initial_delay,
            max: self.max_delay,
            multiplier: self.multiplier,
            jitter: self.jitter,
        }
        .delay(attempt, unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_multiplier() {
        let policy = RetryPolicy {
            jitter: 0.0,
            multiplier: 3.0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay(0, 0.9), Duration::from_millis(100));
        assert_eq!(policy.delay(1, 0.9), Duration::from_millis(300));
        assert_eq!(policy.delay(2, 0.9), Duration::from_millis(900));
    }

    #[test]
    fn delays_stop_growing_at_the_cap() {
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay(6, 0.5), Duration::from_secs(5));
        assert_eq!(policy.delay(u32::MAX, 0.5), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_within_its_fraction_both_ways() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, 0.0), Duration::from_millis(80));
        assert_eq!(policy.delay(0, 0.5), Duration::from_millis(100));
        assert!(policy.delay(0, 0.999_999) <= Duration::from_millis(120));
        for step in 0..=100 {
            let unit = f64::from(step) / 100.0;
            let delay = policy.delay(2, unit);
            assert!(
                (Duration::from_millis(320)..=Duration::from_millis(480)).contains(&delay),
                "{delay:?} at {unit}"
            );
        }
    }

    #[test]
    fn a_multiplier_below_one_never_shrinks_the_delay() {
        let policy = RetryPolicy {
            jitter: 0.0,
            multiplier: 0.5,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay(3, 0.5), Duration::from_millis(100));
    }
}
