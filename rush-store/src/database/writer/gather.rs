//! When the writer commits the writes it took: at once, or after holding them so that one
//! engine commit covers the clients of a whole step.
//!
//! On sled 0.34.7 every `apply_batch` writes and syncs the log buffer twice on its own
//! (`sync_file_range` of the buffer before it and of its batch manifest), so each commit
//! between two flushes adds about 100 us of device time to the flush that follows
//! (measured: groups of 10 events, one commit per flush 212-241 us, two 321-361 us, three
//! 423-474 us). Clients that write again as soon as they are answered arrive one by one;
//! committed as they come, ten of them made about two commits per flush. So durable
//! (`Immediate`) writes wait uncommitted:
//!
//! - while a step runs (the writer is woken when it is done), up to
//!   [`RUN_AHEAD_MEMBERS`]: a busy writer commits its big groups beside the running step
//!   as before;
//! - after a step, until as many are held as that step answered plus those held when it
//!   was done (at most [`RUN_AHEAD_MEMBERS`]), or until as long as the step took (at most
//!   [`MAX_GATHER`]) has passed since its answers went out: PostgreSQL's `commit_delay`,
//!   sized by itself. A lone client never waits: its step answered one.
//!
//! Any other job (a flush, a stop, a backup, a `Periodic` write) commits what is held at
//! once, in order.

use super::Job;
use crate::database::confirmer::{LastStep, RUN_AHEAD_MEMBERS, Status};
use crate::store::Durability;
use std::time::{Duration, Instant};

/// The longest the writer holds writes for the clients the last step answered.
pub(super) const MAX_GATHER: Duration = Duration::from_millis(1);

/// What the writer does with the writes it holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Hold {
    /// Commit them now.
    Commit,
    /// Keep them until the running step is done.
    UntilStepDone,
    /// Keep them until this instant, or until more writes arrive.
    Until(Instant),
}

/// Durable commits an engine made durable within its commit (no step for the confirmer:
/// sled with its write-ahead log, redb), counted as steps of their own so that the group
/// after one gathers its clients too.
#[derive(Debug, Default)]
pub(super) struct InlineSteps {
    finished: u64,
    last: Option<LastStep>,
}

impl InlineSteps {
    /// A commit that answered `answered` writes after `took` finished now.
    pub(super) fn done(&mut self, answered: usize, took: Duration) {
        self.finished = self.finished.wrapping_add(1);
        self.last = Some(LastStep {
            answered,
            waiting: 0,
            took,
            answered_at: Instant::now(),
            succeeded: true,
        });
    }

    /// The confirmer's `status` with these commits counted as steps: the later of the
    /// two last steps.
    pub(super) fn merged(&self, status: Status) -> Status {
        let last = match (status.last, self.last) {
            (Some(step), Some(inline)) if inline.answered_at > step.answered_at => Some(inline),
            (Some(step), _) => Some(step),
            (None, inline) => inline,
        };
        Status {
            flushing: status.flushing,
            finished: status.finished.wrapping_add(self.finished),
            last,
        }
    }
}

/// The gathering after the last finished step.
#[derive(Debug)]
pub(super) struct Gather {
    /// The longest a gathering lasts ([`MAX_GATHER`] but in tests).
    max: Duration,
    /// The confirmer's count of finished steps this gathering belongs to.
    step: u64,
    expected: usize,
    until: Option<Instant>,
}

impl Gather {
    pub(super) fn new(max: Duration) -> Self {
        Self {
            max,
            step: 0,
            expected: 0,
            until: None,
        }
    }

    /// What to do with `held` (taken from the queue, not committed yet), given the
    /// confirmer's `status` at `now`.
    pub(super) fn decide(&mut self, held: &[Job], status: &Status, now: Instant) -> Hold {
        let durable_writes = held.iter().all(|job| {
            matches!(
                job,
                Job::Commit {
                    durability: Durability::Immediate,
                    ..
                }
            )
        });
        if held.is_empty() || !durable_writes || held.len() >= RUN_AHEAD_MEMBERS {
            return Hold::Commit;
        }
        if status.flushing {
            return Hold::UntilStepDone;
        }
        if status.finished != self.step {
            // A step finished since the last group: gather its clients.
            self.step = status.finished;
            let last = status.last.filter(|last| last.succeeded);
            self.expected = last.map_or(0, |last| {
                last.answered
                    .saturating_add(last.waiting)
                    .min(RUN_AHEAD_MEMBERS)
            });
            self.until =
                last.and_then(|last| last.answered_at.checked_add(last.took.min(self.max)));
        }
        match self.until {
            Some(until) if held.len() < self.expected && now < until => Hold::Until(until),
            _ => {
                // Gathered (or given up): later writes until the next step commit at once.
                self.until = None;
                Hold::Commit
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::WriteBatch;
    use crate::database::confirmer::LastStep;
    use crate::database::reply::Reply;

    fn writes(n: usize, durability: Durability) -> Vec<Job> {
        (0..n)
            .map(|_| Job::Commit {
                batch: WriteBatch::default(),
                durability,
                done: Reply::blocking().0,
            })
            .collect()
    }

    fn finished(step: u64, answered: usize, took: Duration, at: Instant) -> Status {
        Status {
            flushing: false,
            finished: step,
            last: Some(LastStep {
                answered,
                waiting: 0,
                took,
                answered_at: at,
                succeeded: true,
            }),
        }
    }

    #[test]
    fn durable_writes_wait_while_a_step_runs_until_there_are_many() {
        let mut gather = Gather::new(MAX_GATHER);
        let running = Status {
            flushing: true,
            finished: 0,
            last: None,
        };
        let now = Instant::now();
        let few = writes(RUN_AHEAD_MEMBERS - 1, Durability::Immediate);
        assert_eq!(gather.decide(&few, &running, now), Hold::UntilStepDone);
        let many = writes(RUN_AHEAD_MEMBERS, Durability::Immediate);
        assert_eq!(gather.decide(&many, &running, now), Hold::Commit);
        let mut mixed = writes(1, Durability::Immediate);
        mixed.extend(writes(1, Durability::Periodic));
        assert_eq!(gather.decide(&mixed, &running, now), Hold::Commit);
        let flush = vec![Job::Flush {
            done: Reply::blocking().0,
        }];
        assert_eq!(gather.decide(&flush, &running, now), Hold::Commit);
    }

    #[test]
    fn after_a_step_the_writer_gathers_the_clients_it_answered_for_a_while() {
        let mut gather = Gather::new(MAX_GATHER);
        let at = Instant::now();
        let status = finished(1, 4, Duration::from_micros(300), at);
        let until = at + Duration::from_micros(300);
        // Two of the four answered are back: wait for the others, until the step's time.
        let two = writes(2, Durability::Immediate);
        assert_eq!(gather.decide(&two, &status, at), Hold::Until(until));
        let four = writes(4, Durability::Immediate);
        assert_eq!(gather.decide(&four, &status, at), Hold::Commit);
        // Gathered: a straggler before the next step commits at once.
        let one = writes(1, Durability::Immediate);
        assert_eq!(gather.decide(&one, &status, at), Hold::Commit);
        // Past the window, the clients back so far commit.
        let status = finished(2, 4, Duration::from_micros(300), at);
        assert_eq!(gather.decide(&two, &status, until), Hold::Commit);
    }

    #[test]
    fn writes_held_when_a_step_was_done_count_with_its_answers_and_a_lone_client_never_waits() {
        let mut gather = Gather::new(MAX_GATHER);
        let at = Instant::now();
        // Three were held when a step of two was done: five are expected.
        let three = writes(3, Durability::Immediate);
        let mut status = finished(1, 2, Duration::from_secs(1), at);
        if let Some(last) = status.last.as_mut() {
            last.waiting = 3;
        }
        assert!(matches!(gather.decide(&three, &status, at), Hold::Until(_)));
        assert_eq!(gather.expected, 5);
        // A step that answered one client: its next write commits at once.
        let one = writes(1, Durability::Immediate);
        let status = finished(2, 1, Duration::from_secs(1), at);
        assert_eq!(gather.decide(&one, &status, at), Hold::Commit);
        // The window never passes MAX_GATHER, and a failed step gathers nothing.
        let status = finished(3, 8, Duration::from_secs(1), at);
        assert_eq!(
            gather.decide(&one, &status, at),
            Hold::Until(at + MAX_GATHER)
        );
        let mut failed = finished(4, 8, Duration::from_secs(1), at);
        if let Some(last) = failed.last.as_mut() {
            last.succeeded = false;
        }
        assert_eq!(gather.decide(&one, &failed, at), Hold::Commit);
    }
}
