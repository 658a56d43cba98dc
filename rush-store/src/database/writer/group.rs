//! A group's commit: the writes waiting at one moment merged into as few atomic batches
//! as their guards allow, each committed (and made durable, when a member asks) in one
//! engine call; a member whose guard fails is answered alone and the rest go on.

use super::{CommitOutcome, Writer};
use crate::backend::{GuardFailed, WriteBatch, WriteOp};
use crate::database::confirmer::{Answer, answer_all_ok};
use crate::database::reply::Reply;
use crate::error::Error;
use crate::store::Durability;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::{debug_span, warn};

/// One write in a group: its ranges in the merged batch and where its outcome goes.
struct Member {
    guards: Range<usize>,
    ops: Range<usize>,
    appends: Range<usize>,
    durability: Durability,
    done: Reply<CommitOutcome>,
}

impl Writer {
    /// Commits `group` in as few atomic batches as its members allow (see
    /// [`independent`]), each made durable in the same engine call when a member asks for
    /// durability.
    pub(super) fn commit_group(&mut self, group: &mut Vec<Pending>) {
        while !group.is_empty() {
            let later = independent(group);
            self.commit_merged(group);
            *group = later;
        }
    }

    /// Commits all members as one batch. A member whose guard fails is answered with its
    /// own failure and the rest are committed without it.
    fn commit_merged(&mut self, group: &mut Vec<Pending>) {
        if group.is_empty() {
            return;
        }
        let Some(engine) = self.engine.clone() else {
            for (_, _, done) in group.drain(..) {
                done.send(Err(Error::Shutdown));
            }
            return;
        };
        let _span = debug_span!("group_commit", members = group.len()).entered();
        let started = Instant::now();
        let mut merged = WriteBatch::default();
        let mut members = Vec::with_capacity(group.len());
        for (batch, durability, done) in group.drain(..) {
            let (guards, ops, appends) =
                (merged.guards.len(), merged.ops.len(), merged.appends.len());
            merged.extend(batch);
            members.push(Member {
                guards: guards..merged.guards.len(),
                ops: ops..merged.ops.len(),
                appends: appends..merged.appends.len(),
                durability,
                done,
            });
        }
        // Readers must not see these log entries before the flush that makes them durable.
        if let Err(error) = self.visibility.hold(engine.as_ref(), &merged.appends) {
            fail_all(members, &error);
            return;
        }
        // A member that asks for durability makes the whole batch durable in the same
        // step (one engine call: redb commits durably in one transaction).
        let immediate = members
            .iter()
            .any(|m| m.durability == Durability::Immediate);
        let step = loop {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                if immediate {
                    engine.commit_durable(&merged)
                } else {
                    engine.commit(&merged).map(|committed| (committed, None))
                }
            }))
            .unwrap_or_else(|panic| Err(Error::panicked("commit", &*panic)));
            match outcome {
                Ok((Ok(()), step)) => break step,
                Ok((Err(failed), _)) => {
                    let Some(owner) = members
                        .iter()
                        .position(|m| m.guards.contains(&failed.index))
                    else {
                        let error = Error::storage(
                            "group commit",
                            format!("guard {} failed but belongs to no member", failed.index),
                        );
                        fail_all(members, &error);
                        return;
                    };
                    let member = members.remove(owner);
                    merged.guards.drain(member.guards.clone());
                    merged.ops.drain(member.ops.clone());
                    merged.appends.drain(member.appends.clone());
                    for later in members.iter_mut().skip(owner) {
                        later.guards = shift(&later.guards, member.guards.len());
                        later.ops = shift(&later.ops, member.ops.len());
                        later.appends = shift(&later.appends, member.appends.len());
                    }
                    let own = GuardFailed {
                        index: failed.index.saturating_sub(member.guards.start),
                        actual: failed.actual,
                    };
                    member.done.send(Ok(Err(own)));
                    if members.is_empty() {
                        return;
                    }
                }
                Err(error) => {
                    warn!(%error, "group commit failed");
                    // The commit may have applied and only its flush failed: a later
                    // flush retries, and releases whatever it covers to readers.
                    if self.unflushed_since.is_none() {
                        self.unflushed_since = Some(Instant::now());
                    }
                    fail_all(members, &error);
                    return;
                }
            }
        };
        metrics::histogram!(crate::metric_names::GROUP_COMMIT_SIZE).record(members.len() as f64);
        metrics::histogram!(crate::metric_names::GROUP_COMMIT_SECONDS)
            .record(started.elapsed().as_secs_f64());
        self.counters.groups.fetch_add(1, Ordering::Relaxed);
        self.counters
            .members
            .fetch_add(members.len() as u64, Ordering::Relaxed);
        let answers: Vec<Answer> = members
            .into_iter()
            .map(|m| Answer::Commit(m.done))
            .collect();
        if immediate {
            self.unflushed_since = None;
            if step.is_none() && !self.confirmer.busy() {
                // The engine made the batch durable in its commit (the confirmer has
                // nothing to run): the answers go out now, and the next group gathers
                // their clients as it would after a step (see `gather`).
                self.inline.done(answers.len(), started.elapsed());
            }
            self.confirm(step, answers);
        } else {
            if self.unflushed_since.is_none() {
                self.unflushed_since = Some(Instant::now());
            }
            answer_all_ok(answers);
        }
    }
}

/// A write waiting for its group.
pub(super) type Pending = (WriteBatch, Durability, Reply<CommitOutcome>);

/// Splits off the members that must wait for a later batch: an engine checks all guards
/// of a batch before any write of it, so a member guarding a key that an earlier member
/// of the same batch writes (two writers expecting the same free slot, a deletion mark
/// changed by a deletion page) would be checked against the state before that write. It
/// goes into the next batch instead, where its guard sees the earlier write and fails as
/// it should. Members after it wait as well, so writes keep the order they were sent in.
/// Keys are compared by hash: a collision only costs an extra batch.
fn independent(group: &mut Vec<Pending>) -> Vec<Pending> {
    let hasher = std::collections::hash_map::RandomState::new();
    let hash = |key: &[u8]| std::hash::BuildHasher::hash_one(&hasher, key);
    // The keys' hashes are already keyed SipHash: the set takes them as they are, and is
    // sized once (it grew and rehashed several times per group of hundreds).
    let writes = group.iter().map(|pending| pending.0.ops.len()).sum();
    let mut written =
        HashSet::with_capacity_and_hasher(writes, BuildHasherDefault::<Hashed>::default());
    let mut later = Vec::new();
    let mut kept = Vec::with_capacity(group.len());
    for pending in group.drain(..) {
        let batch = &pending.0;
        // Once one member waits, all after it wait too: writes keep the order they came in.
        let clashes =
            !later.is_empty() || batch.guards.iter().any(|g| written.contains(&hash(&g.key)));
        if clashes {
            later.push(pending);
            continue;
        }
        for op in &batch.ops {
            let key = match op {
                WriteOp::Put { key, .. } | WriteOp::Delete { key } => key,
            };
            written.insert(hash(key));
        }
        kept.push(pending);
    }
    *group = kept;
    later
}

/// A hasher for values that are hashes already: a `u64` is its own hash.
#[derive(Default)]
struct Hashed(u64);

impl Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else is folded in, still a valid hash.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

fn shift(range: &Range<usize>, by: usize) -> Range<usize> {
    range.start.saturating_sub(by)..range.end.saturating_sub(by)
}

fn fail_all(members: Vec<Member>, error: &Error) {
    for member in members {
        member.done.send(Err(error.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Guard;

    fn pending(guarded: &[u8], written: &[u8]) -> Pending {
        let batch = WriteBatch {
            guards: vec![Guard {
                key: guarded.to_vec(),
                expected: None,
            }],
            ops: vec![WriteOp::Put {
                key: written.to_vec(),
                value: b"v".to_vec(),
            }],
            appends: Vec::new(),
        };
        (batch, Durability::Immediate, Reply::blocking().0)
    }

    fn written_keys(group: &[Pending]) -> Vec<Vec<u8>> {
        group
            .iter()
            .flat_map(|(batch, _, _)| batch.ops.iter())
            .map(|op| match op {
                WriteOp::Put { key, .. } | WriteOp::Delete { key } => key.clone(),
            })
            .collect()
    }

    #[test]
    fn a_member_guarding_a_key_an_earlier_member_writes_waits_with_all_after_it() {
        let mut group = vec![
            pending(b"a", b"a"),
            pending(b"b", b"b"),
            // Guards the slot the first member writes: the next batch.
            pending(b"a", b"a2"),
            // Independent, but after a waiting member: waits too, to keep the order.
            pending(b"c", b"c"),
        ];
        let later = independent(&mut group);
        assert_eq!(written_keys(&group), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(written_keys(&later), [b"a2".to_vec(), b"c".to_vec()]);
        // The keys of one group do not leak into the next.
        let mut next = later;
        let after = independent(&mut next);
        assert!(after.is_empty());
        assert_eq!(next.len(), 2);
    }
}
