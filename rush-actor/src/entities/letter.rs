//! Commands on their way to an entity. A [`Letter`] is one command with its reply channel,
//! numbered in the order the table admitted it, and counted as waiting until the actor
//! takes it. A [`Ticket`] carries a letter into one incarnation's mailbox; if that
//! incarnation dies before it takes the letter, dropping the ticket puts the letter back
//! into the entity's [`Stash`], which hands every stashed letter, oldest first, to the
//! next incarnation before anything newer. So commands keep their send order across a
//! crash, and only a command an actor took can end without a reply.

use crate::behavior::EventSourced;
use crate::error::{CommandError, Error};
use ractor::ActorCell;
use rush_store::EventMetadata;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use tokio::sync::oneshot;

/// The reply channel of one command.
pub(crate) type ReplyTo<S> = oneshot::Sender<
    Result<<S as EventSourced>::Reply, CommandError<<S as EventSourced>::Rejection>>,
>;

/// A read of an entity's state, run by its actor in command order: called with the state,
/// or with the error that kept the read from any actor.
pub(crate) type Read<S> = Box<dyn FnOnce(std::result::Result<&S, Error>) + Send>;

/// What a letter asks of the actor.
pub(crate) enum Work<S: EventSourced> {
    /// A command, and where its reply goes.
    Command(<S as EventSourced>::Command, ReplyTo<S>),
    /// A read of the state after every command admitted before it.
    Read(Read<S>),
}

impl<S: EventSourced> Work<S> {
    /// Answers `error` instead of doing the work.
    pub(crate) fn refuse(self, error: Error) {
        match self {
            Self::Command(_, reply) => {
                let _ = reply.send(Err(CommandError::Failed(error)));
            }
            Self::Read(read) => read(Err(error)),
        }
    }
}

/// Messages of a persistent actor. Only the entity table sends commands, so every command
/// is counted and numbered.
pub(crate) enum HostMsg<S: EventSourced> {
    /// Handle a command and send its reply.
    Command(Ticket<S>),
    /// Passivation timer: stop if idle.
    IdleCheck,
}

/// Counts one command as waiting for its entity, from admission until the actor takes it
/// or it is refused: the count goes up only here and down only when this is dropped, so
/// no path can unbalance it, and it saturates at both ends.
#[derive(Debug)]
pub(crate) struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    pub(crate) fn new(counter: Arc<AtomicUsize>) -> Self {
        let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            Some(n.saturating_add(1))
        });
        Self(counter)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            });
    }
}

/// One command (with its reply channel) or read, and its place in the entity's admission
/// order.
pub(crate) struct Letter<S: EventSourced> {
    seq: u64,
    work: Work<S>,
    metadata: EventMetadata,
    _waiting: Waiting,
}

impl<S: EventSourced> Letter<S> {
    pub(crate) fn new(seq: u64, work: Work<S>, metadata: EventMetadata, waiting: Waiting) -> Self {
        Self {
            seq,
            work,
            metadata,
            _waiting: waiting,
        }
    }

    fn refuse(self, error: Error) {
        self.work.refuse(error);
    }
}

/// A letter in one incarnation's mailbox. Taken, it gives the actor its command (and stops
/// counting it as waiting); dropped untaken, it returns the letter to the entity's stash.
pub(crate) struct Ticket<S: EventSourced> {
    letter: Option<Letter<S>>,
    stash: Weak<Stash<S>>,
}

impl<S: EventSourced> Ticket<S> {
    /// The work and its metadata; `None` if already taken.
    pub(crate) fn take(&mut self) -> Option<(Work<S>, EventMetadata)> {
        let letter = self.letter.take()?;
        Some((letter.work, letter.metadata))
    }
}

impl<S: EventSourced> Drop for Ticket<S> {
    fn drop(&mut self) {
        if let Some(letter) = self.letter.take() {
            match self.stash.upgrade() {
                Some(stash) => stash.put(letter),
                // The entity's slot is gone: the table was shut down.
                None => letter.refuse(Error::Shutdown),
            }
        }
    }
}

/// Why stashed letters are refused.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// The extension was shut down.
    Shutdown,
    /// The supervisor gave up on the entity.
    GaveUp { entity: String, reason: String },
}

impl Refusal {
    fn error(&self) -> Error {
        match self {
            Self::Shutdown => Error::Shutdown,
            Self::GaveUp { entity, reason } => Error::Unavailable {
                entity: entity.clone(),
                reason: reason.clone(),
            },
        }
    }
}

/// The letters of one entity that no incarnation holds, in admission order.
pub(crate) struct Stash<S: EventSourced> {
    me: Weak<Stash<S>>,
    inner: Mutex<StashInner<S>>,
}

struct StashInner<S: EventSourced> {
    letters: BTreeMap<u64, Letter<S>>,
    /// Once set, letters are refused instead of kept.
    refusal: Option<Refusal>,
}

impl<S: EventSourced> Stash<S> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            inner: Mutex::new(StashInner {
                letters: BTreeMap::new(),
                refusal: None,
            }),
        })
    }

    /// No code panics while holding the lock, so a poisoned lock still holds consistent
    /// data.
    fn lock(&self) -> MutexGuard<'_, StashInner<S>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `letter` for the next incarnation (in admission order), or refuses it.
    pub(crate) fn put(&self, letter: Letter<S>) {
        let mut inner = self.lock();
        match inner.refusal.clone() {
            Some(refusal) => {
                drop(inner);
                letter.refuse(refusal.error());
            }
            None => {
                inner.letters.insert(letter.seq, letter);
            }
        }
    }

    /// Sends `letter` to the incarnation behind `cell`; if it cannot take it, the letter
    /// comes back into this stash.
    pub(crate) fn send(&self, cell: &ActorCell, letter: Letter<S>) {
        let ticket = Ticket {
            letter: Some(letter),
            stash: self.me.clone(),
        };
        // On failure the message comes back and is dropped here: its ticket stashes it.
        let _ = cell.send_message(HostMsg::Command(ticket));
    }
}

/// What the table does with a stash without knowing its actor type.
pub(crate) trait Stashed: Send + Sync {
    /// Sends every stashed letter, oldest first, to the incarnation behind `cell`.
    fn deliver_to(&self, cell: &ActorCell);
    /// Whether letters wait here.
    fn is_empty(&self) -> bool;
    /// Refuses every stashed letter, and every letter stashed from now on.
    fn refuse_all(&self, refusal: Refusal);
    /// For the typed side to find its [`Stash`].
    fn as_any(&self) -> &dyn Any;
}

impl<S: EventSourced> Stashed for Stash<S> {
    fn deliver_to(&self, cell: &ActorCell) {
        // Taken out first: a letter the actor refuses comes back through `put`.
        let letters = std::mem::take(&mut self.lock().letters);
        for letter in letters.into_values() {
            self.send(cell, letter);
        }
    }

    fn is_empty(&self) -> bool {
        self.lock().letters.is_empty()
    }

    fn refuse_all(&self, refusal: Refusal) {
        let letters = {
            let mut inner = self.lock();
            inner.refusal = Some(refusal.clone());
            std::mem::take(&mut inner.letters)
        };
        for letter in letters.into_values() {
            letter.refuse(refusal.error());
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
