//! Remembering which commands an entity has already applied, so a command repeated after a
//! crash or a timeout (a saga step, a client retry) is answered without being applied
//! twice. The set lives inside the entity's state: it is snapshotted and replayed with it,
//! so it is exactly as durable as the effects it guards.

use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};

/// How many keys [`IdempotencyKeys::default`] remembers.
pub const DEFAULT_IDEMPOTENCY_CAPACITY: usize = 1024;

/// A bounded set of recently applied idempotency keys; past its capacity the oldest key is
/// forgotten first. Put it in an actor's state and insert a command's key in `apply` of
/// the event the command persisted; in `decide`, answer a command whose key is
/// [`contained`](IdempotencyKeys::contains) with the current state and no event.
///
/// The capacity bounds how late a repeat may come: a saga repeats a command right after a
/// crash, so a few hundred keys per entity cover it.
///
/// ```
/// use rush_actor::IdempotencyKeys;
/// let mut keys = IdempotencyKeys::with_capacity(2);
/// assert!(keys.insert("a"));
/// assert!(!keys.insert("a")); // already there
/// keys.insert("b");
/// keys.insert("c"); // forgets "a"
/// assert!(!keys.contains("a"));
/// assert!(keys.contains("b") && keys.contains("c"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct IdempotencyKeys {
    capacity: usize,
    order: VecDeque<String>,
    set: HashSet<String>,
}

/// What is serialized: the keys oldest first (the set is rebuilt from them).
#[derive(Serialize, Deserialize)]
struct Stored {
    capacity: usize,
    keys: VecDeque<String>,
}

impl From<Stored> for IdempotencyKeys {
    fn from(stored: Stored) -> Self {
        let mut keys = Self::with_capacity(stored.capacity);
        for key in stored.keys {
            keys.insert(key);
        }
        keys
    }
}

impl From<IdempotencyKeys> for Stored {
    fn from(keys: IdempotencyKeys) -> Self {
        Self {
            capacity: keys.capacity,
            keys: keys.order,
        }
    }
}

impl Default for IdempotencyKeys {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_IDEMPOTENCY_CAPACITY)
    }
}

impl IdempotencyKeys {
    /// An empty set remembering at most `capacity` keys (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    /// Whether `key` was inserted and not yet forgotten.
    pub fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    /// Remembers `key`, forgetting the oldest key past the capacity. `false` if it was
    /// already there (nothing changes then).
    pub fn insert(&mut self, key: impl Into<String>) -> bool {
        let key = key.into();
        if self.set.contains(&key) {
            return false;
        }
        while self.order.len() >= self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
        self.set.insert(key.clone());
        self.order.push_back(key);
        true
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The most keys remembered.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_key_is_forgotten_first() {
        let mut keys = IdempotencyKeys::with_capacity(3);
        for key in ["a", "b", "c", "d"] {
            assert!(keys.insert(key));
        }
        assert_eq!(keys.len(), 3);
        assert!(!keys.contains("a"));
        assert!(keys.contains("b") && keys.contains("d"));
    }

    #[test]
    fn a_repeated_key_is_not_inserted_again_and_keeps_its_age() {
        let mut keys = IdempotencyKeys::with_capacity(2);
        assert!(keys.insert("a"));
        assert!(keys.insert("b"));
        assert!(!keys.insert("a"));
        keys.insert("c");
        assert!(!keys.contains("a"), "a is still the oldest");
    }

    #[test]
    fn keys_survive_serialization_in_order() -> Result<(), Box<dyn std::error::Error>> {
        let mut keys = IdempotencyKeys::with_capacity(2);
        keys.insert("x");
        keys.insert("y");
        let bytes = bincode::serde::encode_to_vec(&keys, bincode::config::standard())?;
        let (mut back, _): (IdempotencyKeys, _) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard())?;
        assert_eq!(back, keys);
        back.insert("z");
        assert!(!back.contains("x") && back.contains("y") && back.contains("z"));
        Ok(())
    }
}
