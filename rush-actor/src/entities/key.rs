//! An entity's identity: its actor type's collection and its id, kept apart as a pair, so
//! no bytes either string holds can make two entities one. Which actor type owns a
//! collection is claimed by the first type used with it; a second type is refused.

use crate::behavior::EventSourced;
use crate::error::{Error, Result};
use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// One entity: `(collection, id)`, compared and hashed as a pair, never joined.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EntityKey {
    collection: &'static str,
    id: Arc<str>,
}

impl EntityKey {
    /// Entity `id` of actor type `S`.
    pub(crate) fn of<S: EventSourced>(id: &str) -> Self {
        Self {
            collection: S::COLLECTION,
            id: Arc::from(id),
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
