//! What a command handler decides: events to persist, then a reply computed from the state
//! after those events. Persist-then-reply is in the type: the reply function only runs once
//! the journal has confirmed the events.

use crate::behavior::EventSourced;

type ReplyFn<S> = Box<dyn FnOnce(&S) -> <S as EventSourced>::Reply + Send>;

/// The outcome of handling one command.
pub struct Effect<S: EventSourced> {
    pub(crate) events: Vec<S::Event>,
    pub(crate) reply: ReplyFn<S>,
}

impl<S: EventSourced> std::fmt::Debug for Effect<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Effect")
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// Events waiting for their reply: finish with [`PendingEffect::then_reply`].
#[must_use = "an effect does nothing until it is returned from `decide` with a reply"]
pub struct PendingEffect<S: EventSourced> {
    events: Vec<S::Event>,
}

impl<S: EventSourced> Effect<S> {
    /// Persist one event.
    pub fn persist(event: S::Event) -> PendingEffect<S> {
        PendingEffect {
            events: vec![event],
        }
    }

    /// Persist several events atomically (all or none), in order.
    pub fn persist_all(events: impl IntoIterator<Item = S::Event>) -> PendingEffect<S> {
        PendingEffect {
            events: events.into_iter().collect(),
        }
    }

    /// Persist nothing and reply at once (queries, idempotent repeats).
    pub fn reply(reply: S::Reply) -> Self {
        Self {
            events: Vec::new(),
            reply: Box::new(move |_| reply),
        }
    }

    /// Persist nothing and reply from the current state.
    pub fn reply_with(reply: impl FnOnce(&S) -> S::Reply + Send + 'static) -> Self {
        Self {
            events: Vec::new(),
            reply: Box::new(reply),
        }
    }

    /// The events this effect persists.
    pub fn events(&self) -> &[S::Event] {
        &self.events
    }
}

impl<S: EventSourced> PendingEffect<S> {
    /// The reply, computed from the state after the events are durable and applied.
    pub fn then_reply(self, reply: impl FnOnce(&S) -> S::Reply + Send + 'static) -> Effect<S> {
        Effect {
            events: self.events,
            reply: Box::new(reply),
        }
    }
}
