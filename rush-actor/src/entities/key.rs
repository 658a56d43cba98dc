//! An entity's identity: its actor type's collection and its id, kept apart as a pair, so
//! no bytes either string holds can make two entities one. Which actor type owns a
//! collection is claimed by the first type used with it; a second type is refused.

use crate::behavior::EventSourced;
use crate::error::{Error, Result};
use std::any::TypeId;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// One entity: `(collection, id)`, compared and hashed as a pair, never joined.
///
/// The pair's hash is computed once, when the key is made (with the process's randomly
/// keyed SipHash, as a `HashMap` would), and the key hashes as that number: the entity
/// table finds a command's entity on every command, from a key its `EntityRef` made once.
#[derive(Debug, Clone)]
pub(crate) struct EntityKey {
    collection: &'static str,
    id: Arc<str>,
    hash: u64,
}

impl PartialEq for EntityKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.collection == other.collection && self.id == other.id
    }
}

impl Eq for EntityKey {}

impl Hash for EntityKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl EntityKey {
    /// Entity `id` of actor type `S`.
    pub(crate) fn of<S: EventSourced>(id: &str) -> Self {
        Self::new(S::COLLECTION, Arc::from(id))
    }

    fn new(collection: &'static str, id: Arc<str>) -> Self {
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        let hash = KEYS
            .get_or_init(RandomState::new)
            .hash_one((collection, &*id));
        Self {
            collection,
            id,
            hash,
        }
    }

    /// The entity id.
    pub(crate) fn collection(&self) -> &'static str {
        self.collection
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

/// `collection/id`, for messages and logs only: it identifies nothing.
impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.collection, self.id)
    }
}

/// The actor type that owns a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    type_id: TypeId,
    type_name: &'static str,
    collection: &'static str,
}

impl Claim {
    /// The claim of actor type `S` on its collection.
    pub(crate) fn of<S: EventSourced>() -> Self {
        Self {
            type_id: TypeId::of::<S>(),
            type_name: std::any::type_name::<S>(),
            collection: S::COLLECTION,
        }
    }
}

/// Which actor type owns each collection used so far: the first one used with it.
#[derive(Debug, Default)]
pub(crate) struct Claims(HashMap<&'static str, Claim>);

impl Claims {
    /// Records `claim` if its collection is free; [`Error::CollectionClaimed`] if another
    /// actor type owns it (their events would mix in one journal).
    pub(crate) fn check(&mut self, claim: Claim) -> Result<()> {
        let owner = *self.0.entry(claim.collection).or_insert(claim);
        if owner.type_id == claim.type_id {
            Ok(())
        } else {
            Err(Error::CollectionClaimed {
                collection: claim.collection.to_owned(),
                owner: owner.type_name,
                other: claim.type_name,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pair_is_one_key_and_two_pairs_never_join() {
        let key = |collection, id: &str| EntityKey::new(collection, Arc::from(id));
        let (a, same, joined) = (key("ab", "c"), key("ab", "c"), key("a", "bc"));
        assert_eq!(a, same);
        assert_ne!(a, joined);
        let mut table = HashMap::new();
        table.insert(a.clone(), 1);
        table.insert(joined.clone(), 2);
        assert_eq!(table.get(&same), Some(&1));
        assert_eq!(table.get(&joined), Some(&2));
        assert_eq!(table.len(), 2);
    }
}
