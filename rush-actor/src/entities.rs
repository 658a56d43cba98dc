//! The entity lifecycle: which incarnation of an actor runs each entity of one extension,
//! and every transition between its phases. Callers, the supervisor, timers and the actors
//! themselves only report events here; each transition decides under the one table lock,
//! so no command reaches an actor that is about to stop, no entity runs twice, and commands
//! keep the order they were admitted in (see [`letter`]).
//!
//! | phase | event | next phase | reported by |
//! |---|---|---|---|
//! | absent | command or `get_or_spawn` | `Running` (incarnation 1) | `EntityRef::ask`, `Persistence::{get_or_spawn, spawn}` |
//! | `Running` | command | `Running` (sent to its mailbox) | `EntityRef::ask` |
//! | `BackingOff`, `Passivating` | command | same (kept in the stash) | `EntityRef::ask` |
//! | `GaveUp` | command or `get_or_spawn` | `GaveUp` (refused: `Unavailable`) | `EntityRef::ask`, `Persistence::get_or_spawn` |
//! | `Running` | failure, counted, budget left | `BackingOff` (restart after a backoff) | the supervisor (`ActorFailed`), the startup watcher (recovery failed) |
//! | `Running` | failure, counted, budget spent | `GaveUp` (stash refused) | the same |
//! | `Running` | failure, a write conflict (not counted) | `Running` (next incarnation now) | the supervisor (`ActorFailed`) |
//! | `BackingOff` | backoff elapsed | `Running` (next incarnation, stash first) | a timer |
//! | `Running` | idle, nothing waiting | `Passivating` (actor stopped) | the actor's idle timer |
//! | `Running`, `Passivating` | incarnation stopped, stash empty | absent (slot released) | the supervisor (`ActorTerminated`) |
//! | `Running`, `Passivating` | incarnation stopped, letters stashed | `Running` (next incarnation, stash first) | the supervisor (`ActorTerminated`) |
//! | `GaveUp` | cool-down elapsed | absent (slot released) | a timer |
//! | `GaveUp` | revive | absent (slot released) | `Persistence::revive` |
//! | any | shutdown | closed (stashes refused: `Shutdown`; incarnations drained) | `Persistence::shutdown`, the supervisor's end |
//!
//! A closed table refuses every command and start with `Shutdown`. A launch that fails
//! counts as a failure of the incarnation it was to replace.

mod key;
mod letter;
mod slot;
mod supervisor;
#[cfg(test)]
mod tests;

pub(crate) use key::{Claim, EntityKey};
pub(crate) use letter::{HostMsg, Read, ReplyTo, Stash, Stashed, Work};
pub(crate) use slot::{NewSlot, Starter, Startup, StartupHandle};
pub(crate) use supervisor::{Reload, Supervisor};

use crate::behavior::EventSourced;
use crate::error::{Error, Result};
use crate::metrics::MetricsCell;
use crate::supervision::RestartPolicy;
use letter::{Letter, Refusal, Waiting};
use ractor::{ActorCell, ActorId, SpawnErr};
use rush_store::EventMetadata;
use rush_store::metric_names;
use slot::{Entities, Phase, Slot};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// What ends a timer.
#[derive(Debug, Clone, Copy)]
enum Timer {
    Backoff,
    CoolDown,
}

/// The live entities of one extension.
pub(crate) struct EntityTable {
    entities: Mutex<Entities>,
    policy: RestartPolicy,
    max_waiting: usize,
    supervisor: OnceLock<ActorCell>,
    me: Weak<EntityTable>,
}

impl EntityTable {
    pub(crate) fn new(policy: RestartPolicy, max_waiting: usize) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            entities: Mutex::default(),
            policy,
            max_waiting,
            supervisor: OnceLock::new(),
            me: me.clone(),
        })
    }

    /// Locks the table. No code panics while holding it, so a poisoned lock still holds
    /// consistent data.
    fn lock(&self) -> MutexGuard<'_, Entities> {
        self.entities.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `supervisor` the parent of every incarnation (set once, when it starts).
    pub(crate) fn attach(&self, supervisor: ActorCell) {
        let _ = self.supervisor.set(supervisor);
    }

    /// Event "command": admits one command of entity `key` (starting the entity if it is
    /// absent) and sends it to the running incarnation or keeps it in the stash.
    pub(crate) fn post<S: EventSourced>(
        &self,
        key: &EntityKey,
        new_slot: impl FnOnce() -> NewSlot,
        work: Work<S>,
        metadata: EventMetadata,
    ) -> Result<()> {
        let mut entities = self.lock();
        let slot = self.slot_for(&mut entities, key, Claim::of::<S>(), new_slot, false)?;
        let Some(stash) = slot.stash.as_any().downcast_ref::<Stash<S>>() else {
            // The claim check makes this unreachable: one collection, one actor type.
            return Err(Error::Spawn {
                entity: key.to_string(),
                reason: "the entity belongs to another actor type".into(),
            });
        };
        if let Phase::GaveUp { reason } = &slot.phase {
            return Err(Error::Unavailable {
                entity: key.to_string(),
                reason: reason.clone(),
            });
        }
        let pending = slot.waiting.load(Ordering::SeqCst);
        if pending >= self.max_waiting {
            return Err(Error::Overloaded {
                entity: key.to_string(),
                pending,
                limit: self.max_waiting,
            });
        }
        slot.admitted = slot.admitted.saturating_add(1);
        let waiting = Waiting::new(Arc::clone(&slot.waiting));
        let letter = Letter::new(slot.admitted, work, metadata, waiting);
        match &slot.phase {
            Phase::Running { cell } => stash.send(cell, letter),
            Phase::BackingOff | Phase::Passivating { .. } | Phase::GaveUp { .. } => {
                stash.put(letter);
            }
        }
        Ok(())
    }

    /// Event "start": the entity's startup, started if it is absent. With `fresh`, an
    /// entity that already has a slot is [`Error::Spawn`].
    pub(crate) fn start(
        &self,
        key: &EntityKey,
        claim: Claim,
        new_slot: impl FnOnce() -> NewSlot,
        fresh: bool,
    ) -> Result<watch::Receiver<Startup>> {
        let mut entities = self.lock();
        let slot = self.slot_for(&mut entities, key, claim, new_slot, fresh)?;
        match &slot.phase {
            Phase::GaveUp { reason } => Err(Error::Unavailable {
                entity: key.to_string(),
                reason: reason.clone(),
            }),
            _ => Ok(slot.startup.subscribe()),
        }
    }

    /// Event "revive": releases a given-up entity, so its next command starts it afresh
    /// with a new restart budget. `false` if it was not given up.
    pub(crate) fn revive(&self, key: &EntityKey, claim: Claim) -> Result<bool> {
        let mut entities = self.lock();
        if entities.closed {
            return Err(Error::Shutdown);
        }
        entities.claims.check(claim)?;
        let given_up = entities
            .slots
            .get(key)
            .is_some_and(|slot| matches!(slot.phase, Phase::GaveUp { .. }));
        if given_up {
            info!(entity = %key, "given-up persistent actor revived");
            entities.remove(key);
        }
        Ok(given_up)
    }

    /// Event "failure" of a live incarnation, reported by the supervisor.
    pub(crate) fn actor_failed(&self, actor: ActorId, reason: String, counted: bool) {
        let mut entities = self.lock();
        let Some((key, incarnation)) = entities.incarnation_of(actor) else {
            return;
        };
        let passivating = entities
            .slots
            .get(&key)
            .is_some_and(|slot| matches!(slot.phase, Phase::Passivating { .. }));
        if passivating {
            // It failed while stopping: it stopped.
            self.stopped(&mut entities, &key);
        } else {
            self.failed(&mut entities, &key, incarnation, reason, counted);
        }
    }

    /// Event "incarnation stopped" (not failed), reported by the supervisor.
    pub(crate) fn actor_stopped(&self, actor: ActorId) {
        let mut entities = self.lock();
        if let Some((key, _)) = entities.incarnation_of(actor) {
            self.stopped(&mut entities, &key);
        }
    }

    /// Event "idle": stops the incarnation if no command waits for it.
    pub(crate) fn idle(&self, key: &EntityKey, incarnation: u64) {
        let mut entities = self.lock();
        let Some(slot) = entities.slots.get(key) else {
            return;
        };
        if slot.incarnation != incarnation || slot.waiting.load(Ordering::SeqCst) > 0 {
            return;
        }
        if let Phase::Running { cell } = &slot.phase {
            info!(entity = %key, "passivating idle persistent actor");
            let cell = cell.clone();
            cell.stop(Some("passivated".into()));
            entities.set_phase(key, Phase::Passivating { cell });
        }
    }

    /// Event "stop asked" (`Effect::stop`, or the test kit's restart): the incarnation
    /// `incarnation` (any, when `None`) handles the commands already in its mailbox, then
    /// stops; commands admitted from now on wait in the stash and start the next
    /// incarnation. Not a failure: no restart is counted. Returns whether it stops.
    pub(crate) fn passivate(&self, key: &EntityKey, incarnation: Option<u64>) -> bool {
        let mut entities = self.lock();
        let Some(slot) = entities.slots.get(key) else {
            return false;
        };
        if incarnation.is_some_and(|incarnation| slot.incarnation != incarnation) {
            return false;
        }
        let Phase::Running { cell } = &slot.phase else {
            return false;
        };
        info!(entity = %key, "persistent actor stops after its mailbox");
        let cell = cell.clone();
        // Behind the letters already sent: they are handled in order, then it stops.
        let _ = cell.drain();
        entities.set_phase(key, Phase::Passivating { cell });
        true
    }

    /// Event "shutdown": closes the table, refuses every stashed command, and returns the
    /// live incarnations for the caller to drain.
    pub(crate) fn close(&self) -> Vec<ActorCell> {
        let slots = {
            let mut entities = self.lock();
            entities.closed = true;
            entities.by_actor.clear();
            std::mem::take(&mut entities.slots)
        };
        slots
            .into_values()
            .filter_map(|slot| {
                slot.stash.refuse_all(Refusal::Shutdown);
                slot.phase.cell().cloned()
            })
            .collect()
    }

    /// The slot of `key` after the closed and claim checks, created and launched if absent.
    fn slot_for<'a>(
        &self,
        entities: &'a mut Entities,
        key: &EntityKey,
        claim: Claim,
        new_slot: impl FnOnce() -> NewSlot,
        fresh: bool,
    ) -> Result<&'a mut Slot> {
        if entities.closed {
            return Err(Error::Shutdown);
        }
        entities.claims.check(claim)?;
        if entities.slots.contains_key(key) {
            if fresh {
                return Err(Error::Spawn {
                    entity: key.to_string(),
                    reason: "already running".into(),
                });
            }
        } else {
            entities.generations = entities.generations.saturating_add(1);
            let slot = Slot::new(new_slot(), entities.generations);
            entities.slots.insert(key.clone(), slot);
            if let Err(error) = self.launch(entities, key) {
                entities.remove(key);
                return Err(Error::Spawn {
                    entity: key.to_string(),
                    reason: error.to_string(),
                });
            }
        }
        entities.slots.get_mut(key).ok_or(Error::Shutdown)
    }

    /// Starts the next incarnation of `key`, hands it the stash, and watches its startup.
    fn launch(&self, entities: &mut Entities, key: &EntityKey) -> Result<(), SpawnErr> {
        let supervisor = self
            .supervisor
            .get()
            .cloned()
            .ok_or_else(|| SpawnErr::StartupFailed("the supervisor is not running".into()))?;
        let Some(slot) = entities.slots.get_mut(key) else {
            return Ok(());
        };
        let incarnation = slot.incarnation.saturating_add(1);
        let (cell, startup) = slot.starter.start(incarnation, supervisor)?;
        slot.incarnation = incarnation;
        // Before any newer command: the stash holds the oldest ones.
        slot.stash.deliver_to(&cell);
        slot.startup.send_replace(Startup::Recovering);
        MetricsCell::add(&slot.metrics.incarnations, 1);
        let watch = slot.startup.clone();
        let generation = slot.generation;
        entities.set_phase(key, Phase::Running { cell });
        let table = self.me.clone();
        let key = key.clone();
        tokio::spawn(async move {
            match Startup::of(startup.await) {
                Startup::Failed(reason, cause) => {
                    watch.send_replace(Startup::Failed(reason.clone(), cause));
                    if let Some(table) = table.upgrade() {
                        let mut entities = table.lock();
                        let same_slot = entities
                            .slots
                            .get(&key)
                            .is_some_and(|slot| slot.generation == generation);
                        if same_slot {
                            let reason = format!("recovery failed: {reason}");
                            table.failed(&mut entities, &key, incarnation, reason, true);
                        }
                    }
                }
                ready => {
                    watch.send_replace(ready);
                }
            }
        });
        Ok(())
    }

    /// A failure of live `incarnation` of `key`: a `counted` one restarts it after a
    /// backoff or gives up; another (a write conflict) restarts it at once.
    fn failed(
        &self,
        entities: &mut Entities,
        key: &EntityKey,
        incarnation: u64,
        reason: String,
        counted: bool,
    ) {
        let Some(slot) = entities.slots.get(key) else {
            return;
        };
        if slot.incarnation != incarnation || !matches!(slot.phase, Phase::Running { .. }) {
            return;
        }
        if counted {
            self.count_failure(entities, key, incarnation, reason);
            return;
        }
        warn!(entity = %key, %reason, "persistent actor reloads after a write conflict");
        MetricsCell::add(&slot.metrics.restarts, 1);
        count_restart(key);
        if let Err(error) = self.launch(entities, key) {
            let reason = format!("restart failed: {error}");
            self.count_failure(entities, key, incarnation, reason);
        }
    }

    /// Counts a failure of `incarnation` (its own, or of the launch that was to replace
    /// it) in the restart window: back off and restart, or give up.
    fn count_failure(
        &self,
        entities: &mut Entities,
        key: &EntityKey,
        incarnation: u64,
        reason: String,
    ) {
        let Some(slot) = entities.slots.get_mut(key) else {
            return;
        };
        let stamp = (slot.generation, incarnation);
        match slot.history.record_failure(&self.policy) {
            Some(backoff) => {
                warn!(entity = %key, %reason, ?backoff, restarts = slot.history.total, "persistent actor failed; restarting after backoff");
                MetricsCell::add(&slot.metrics.restarts, 1);
                count_restart(key);
                entities.set_phase(key, Phase::BackingOff);
                self.schedule(Timer::Backoff, backoff, key, stamp);
            }
            None => {
                error!(entity = %key, %reason, "persistent actor failed too often; the supervisor gives up");
                slot.stash.refuse_all(Refusal::GaveUp {
                    entity: key.to_string(),
                    reason: reason.clone(),
                });
                entities.set_phase(key, Phase::GaveUp { reason });
                self.schedule(Timer::CoolDown, self.policy.cool_down, key, stamp);
            }
        }
    }

    /// The live incarnation of `key` stopped: release the slot, or start the next
    /// incarnation for the commands stashed meanwhile.
    fn stopped(&self, entities: &mut Entities, key: &EntityKey) {
        let Some(slot) = entities.slots.get(key) else {
            return;
        };
        if slot.stash.is_empty() {
            info!(entity = %key, "persistent actor stopped");
            entities.remove(key);
            return;
        }
        let incarnation = slot.incarnation;
        entities.set_phase(key, Phase::BackingOff);
        if let Err(error) = self.launch(entities, key) {
            let reason = format!("start failed: {error}");
            self.count_failure(entities, key, incarnation, reason);
        }
    }

    /// Reports `timer` for `stamp` (slot generation, incarnation) of `key` after `delay`.
    /// A delay too long to be represented never ends.
    fn schedule(&self, timer: Timer, delay: Duration, key: &EntityKey, stamp: (u64, u64)) {
        if std::time::Instant::now().checked_add(delay).is_none() {
            return;
        }
        let table = self.me.clone();
        let key = key.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(table) = table.upgrade() {
                table.timer_elapsed(timer, &key, stamp);
            }
        });
    }

    /// Event "backoff elapsed" or "cool-down elapsed".
    fn timer_elapsed(&self, timer: Timer, key: &EntityKey, stamp: (u64, u64)) {
        let (_, incarnation) = stamp;
        let mut entities = self.lock();
        let due = entities.slots.get(key).is_some_and(|slot| {
            (slot.generation, slot.incarnation) == stamp
                && matches!(
                    (timer, &slot.phase),
                    (Timer::Backoff, Phase::BackingOff) | (Timer::CoolDown, Phase::GaveUp { .. })
                )
        });
        if !due {
            return;
        }
        match timer {
            Timer::Backoff => {
                if let Err(error) = self.launch(&mut entities, key) {
                    let reason = format!("restart failed: {error}");
                    self.count_failure(&mut entities, key, incarnation, reason);
                } else {
                    info!(entity = %key, incarnation = incarnation.saturating_add(1), "persistent actor restarted");
                }
            }
            Timer::CoolDown => {
                info!(entity = %key, "given-up persistent actor released after its cool-down");
                entities.remove(key);
            }
        }
    }
}

/// Records one restart of an entity of `key`'s collection with the metrics recorder.
fn count_restart(key: &EntityKey) {
    ::metrics::counter!(metric_names::ACTOR_RESTARTS_TOTAL, "collection" => key.collection())
        .increment(1);
}
