//! What a command handler decides: events to persist, then a reply computed from the state
//! after those events. Persist-then-reply is in the type: the reply function only runs once
//! the journal has confirmed the events. Side effects (`then_run`) and a stop
//! (`then_stop`) run at the same point, after the events are durable and applied.

use crate::behavior::EventSourced;

type ReplyFn<S> = Box<dyn FnOnce(&S) -> <S as EventSourced>::Reply + Send>;
type SideEffect<S> = Box<dyn FnOnce(&S) + Send>;

/// The outcome of handling one command.
pub struct Effect<S: EventSourced> {
    pub(crate) events: Vec<S::Event>,
    pub(crate) after: After<S>,
    pub(crate) reply: ReplyFn<S>,
}

/// What runs once the events are durable and applied, before the reply.
pub(crate) struct After<S: EventSourced> {
    /// Side effects, in the order they were added.
    pub(crate) side_effects: Vec<SideEffect<S>>,
    /// Passivate the entity after this command.
    pub(crate) stop: bool,
}

impl<S: EventSourced> Default for After<S> {
    fn default() -> Self {
        Self {
            side_effects: Vec::new(),
            stop: false,
        }
    }
}

impl<S: EventSourced> std::fmt::Debug for Effect<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Effect")
            .field("events", &self.events)
            .field("side_effects", &self.after.side_effects.len())
            .field("stop", &self.after.stop)
            .finish_non_exhaustive()
    }
}

/// Events waiting for their reply: finish with [`PendingEffect::then_reply`]. Side effects
/// ([`PendingEffect::then_run`]) and a stop ([`PendingEffect::then_stop`]) can be added
/// first.
#[must_use = "an effect does nothing until it is returned from `decide` with a reply"]
pub struct PendingEffect<S: EventSourced> {
    events: Vec<S::Event>,
    after: After<S>,
}

impl<S: EventSourced> std::fmt::Debug for PendingEffect<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEffect")
            .field("events", &self.events)
            .field("side_effects", &self.after.side_effects.len())
            .field("stop", &self.after.stop)
            .finish()
    }
}

impl<S: EventSourced> Effect<S> {
    /// Persist one event.
    pub fn persist(event: S::Event) -> PendingEffect<S> {
        Self::persist_all([event])
    }

    /// Persist several events atomically (all or none), in order.
    pub fn persist_all(events: impl IntoIterator<Item = S::Event>) -> PendingEffect<S> {
        PendingEffect {
            events: events.into_iter().collect(),
            after: After::default(),
        }
    }

    /// Persist nothing, then stop (passivate) the entity once the commands already in its
    /// mailbox are handled; finish with a reply. A later command starts the entity again,
    /// recovered from the journal. Not a failure: no restart is counted.
    ///
    /// ```
    /// # use rush_actor::{Effect, EventSourced};
    /// # use rush_store::PersistentActor;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Default, Clone, Serialize, Deserialize)]
    /// # struct Session { open: bool }
    /// # impl PersistentActor for Session {
    /// #     type Event = bool;
    /// #     fn apply(&mut self, open: &bool) { self.open = *open; }
    /// # }
    /// # impl EventSourced for Session {
    /// #     const COLLECTION: &'static str = "sessions";
    /// #     type Command = &'static str;
    /// #     type Reply = bool;
    /// #     type Rejection = String;
    /// fn decide(&self, command: &'static str) -> Result<Effect<Self>, String> {
    ///     match command {
    ///         "close" => Ok(Effect::persist(false).then_stop().then_reply(|s: &Session| s.open)),
    ///         "idle" => Ok(Effect::stop().then_reply(|s: &Session| s.open)),
    ///         _ => Ok(Effect::persist(true).then_reply(|s: &Session| s.open)),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn stop() -> PendingEffect<S> {
        Self::persist_all([]).then_stop()
    }

    /// Persist nothing and reply at once (queries, idempotent repeats).
    pub fn reply(reply: S::Reply) -> Self {
        Self::persist_all([]).then_reply(move |_| reply)
    }

    /// Persist nothing and reply from the current state.
    pub fn reply_with(reply: impl FnOnce(&S) -> S::Reply + Send + 'static) -> Self {
        Self::persist_all([]).then_reply(reply)
    }

    /// Also runs `side_effect` with the state once the events are durable and applied,
    /// after the side effects added before it and before the reply.
    pub fn then_run(mut self, side_effect: impl FnOnce(&S) + Send + 'static) -> Self {
        self.after.side_effects.push(Box::new(side_effect));
        self
    }

    /// Also stops (passivates) the entity after this command: see [`Effect::stop`].
    pub fn then_stop(mut self) -> Self {
        self.after.stop = true;
        self
    }

    /// The events this effect persists.
    pub fn events(&self) -> &[S::Event] {
        &self.events
    }

    /// Whether the entity stops after this command.
    pub fn stops(&self) -> bool {
        self.after.stop
    }
}

impl<S: EventSourced> PendingEffect<S> {
    /// Runs `side_effect` with the state once the events are durable and applied (never for
    /// a command whose events failed to persist), in the order side effects were added,
    /// before the reply. A side effect that panics stops the incarnation after the reply
    /// is sent; its events stay durable.
    ///
    /// ```
    /// # use rush_actor::{Effect, EventSourced};
    /// # use rush_store::PersistentActor;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Default, Clone, Serialize, Deserialize)]
    /// # struct Counter { value: u64 }
    /// # impl PersistentActor for Counter {
    /// #     type Event = u64;
    /// #     fn apply(&mut self, n: &u64) { self.value += n; }
    /// # }
    /// # impl EventSourced for Counter {
    /// #     const COLLECTION: &'static str = "counters";
    /// #     type Command = u64;
    /// #     type Reply = u64;
    /// #     type Rejection = String;
    /// fn decide(&self, add: u64) -> Result<Effect<Self>, String> {
    ///     Ok(Effect::persist(add)
    ///         .then_run(|s: &Counter| tracing::info!(value = s.value, "counter moved"))
    ///         .then_reply(|s: &Counter| s.value))
    /// }
    /// # }
    /// ```
    pub fn then_run(mut self, side_effect: impl FnOnce(&S) + Send + 'static) -> Self {
        self.after.side_effects.push(Box::new(side_effect));
        self
    }

    /// Stops (passivates) the entity after this command: see [`Effect::stop`].
    pub fn then_stop(mut self) -> Self {
        self.after.stop = true;
        self
    }

    /// The reply, computed from the state after the events are durable and applied.
    pub fn then_reply(self, reply: impl FnOnce(&S) -> S::Reply + Send + 'static) -> Effect<S> {
        Effect {
            events: self.events,
            after: self.after,
            reply: Box::new(reply),
        }
    }

    /// The events this effect persists.
    pub fn events(&self) -> &[S::Event] {
        &self.events
    }
}
