//! Spawns the incarnations of one entity of type `S`: the typed half of its slot in the
//! entity table.

use super::{Host, HostArgs};
use crate::behavior::EventSourced;
use crate::entities::{EntityKey, NewSlot, Starter, StartupHandle, Stash};
use crate::metrics::MetricsCell;
use crate::shared::Shared;
use ractor::{ActorCell, SpawnErr};
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

/// The slot of a new entity `key` of type `S`.
pub(crate) fn new_slot<S: EventSourced>(shared: &Arc<Shared>, key: &EntityKey) -> NewSlot {
    let metrics = Arc::new(MetricsCell::default());
    NewSlot {
        starter: Arc::new(HostStarter::<S> {
            shared: Arc::downgrade(shared),
            key: key.clone(),
            metrics: Arc::clone(&metrics),
            _marker: PhantomData,
        }),
        stash: Stash::<S>::new(),
        metrics,
    }
}

struct HostStarter<S> {
    shared: Weak<Shared>,
    key: EntityKey,
    metrics: Arc<MetricsCell>,
    _marker: PhantomData<fn() -> S>,
}

impl<S: EventSourced> Starter for HostStarter<S> {
    fn start(
        &self,
        incarnation: u64,
        supervisor: ActorCell,
    ) -> Result<(ActorCell, StartupHandle), SpawnErr> {
        let shared = self
            .shared
            .upgrade()
            .ok_or_else(|| SpawnErr::StartupFailed("persistence is shut down".into()))?;
        let args = HostArgs {
            shared,
            entity_id: self.key.id().to_owned(),
            name: self.key.to_string(),
            key: self.key.clone(),
            incarnation,
            metrics: Arc::clone(&self.metrics),
        };
        // No ractor name: names are one global string namespace, and the entity table
        // already knows which actor runs which entity.
        let (actor, startup) = ractor::ActorRuntime::<Host<S>>::spawn_linked_instant(
            None,
            Host::<S>::new(),
            args,
            supervisor,
        )?;
        Ok((actor.get_cell(), startup))
    }
}
