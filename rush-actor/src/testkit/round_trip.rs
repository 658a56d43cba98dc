//! Round trips: values written through the journal's codec, compression, encryption and
//! upcasters, read back and compared.

use super::{BehaviorTestKit, TestKitError};
use crate::behavior::EventSourced;
use rush_store::{PersistentActor, Store};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;

impl<S> BehaviorTestKit<S>
where
    S: EventSourced + PartialEq + Debug,
    S::Event: PartialEq,
{
    /// Writes `event` to a scratch entity, through the journal's
    /// codec, compression, encryption and upcasters (apart from the collection under test),
    /// reads it back and compares.
    ///
    /// # Errors
    ///
    /// [`TestKitError::RoundTrip`] when the event read back differs or cannot be read;
    /// [`TestKitError::Store`] when it cannot be written.
    pub fn check_event_round_trip(&self, event: &S::Event) -> Result<S::Event, TestKitError> {
        let mut store = self.scratch::<S>()?;
        store.persist(event)?;
        let read = store
            .events(0, u64::MAX)
            .map_err(|e| round_trip_error("event", event, e))?;
        match read.as_slice() {
            [back] if back == event => Ok(back.clone()),
            other => Err(TestKitError::RoundTrip {
                what: "event",
                written: format!("{event:?}"),
                read: format!("{other:?}"),
            }),
        }
    }

    /// Saves `state` as a snapshot of a scratch entity, recovers it and compares.
    ///
    /// # Errors
    ///
    /// [`TestKitError::RoundTrip`] when the recovered state differs or cannot be read;
    /// [`TestKitError::Store`] when it cannot be written.
    pub fn check_state_round_trip(&self, state: &S) -> Result<S, TestKitError> {
        let mut store = self.scratch::<S>()?;
        store.snapshot(state)?;
        let recovered = store
            .recover()
            .map_err(|e| round_trip_error("state", state, e))?;
        match recovered {
            Some(back) if &back == state => Ok(back),
            other => Err(TestKitError::RoundTrip {
                what: "state",
                written: format!("{state:?}"),
                read: format!("{other:?}"),
            }),
        }
    }

    /// Writes `old` events as the older actor type `Old` wrote them (its
    /// `EVENT_SCHEMA_VERSION` and event types) to a scratch entity, and reads them back as
    /// today's `S` does: through `S`'s upcasters.
    ///
    /// # Errors
    ///
    /// [`TestKitError::Store`] when an event cannot be written, has no upcaster path to
    /// today's schema or does not decode.
    pub fn upcast<Old: PersistentActor>(
        &self,
        old: &[Old::Event],
    ) -> Result<Vec<S::Event>, TestKitError> {
        let id = scratch_id();
        let db = self.persistence.database();
        db.store::<Old>(SCRATCH_COLLECTION, &id)?
            .persist_batch(old)?;
        let reader: Store<S> = db.store(SCRATCH_COLLECTION, &id)?;
        Ok(reader.events(0, u64::MAX)?)
    }

    /// Writes `value` to a table of the kit's database (the journal's codec, record format
    /// and encryption), reads it back and compares: for commands and other values an
    /// application sends over the wire or keeps beside the journal.
    ///
    /// # Errors
    ///
    /// [`TestKitError::RoundTrip`] when the value read back differs or cannot be read;
    /// [`TestKitError::Store`] when it cannot be written.
    pub fn check_round_trip<T>(&self, value: &T) -> Result<T, TestKitError>
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let table = self.persistence.table::<T>(SCRATCH_COLLECTION)?;
        let key = scratch_id();
        table.put(&key, value)?;
        let back = table
            .get(&key)
            .map_err(|e| round_trip_error("value", value, e))?;
        match back {
            Some(back) if &back == value => Ok(back),
            other => Err(TestKitError::RoundTrip {
                what: "value",
                written: format!("{value:?}"),
                read: format!("{other:?}"),
            }),
        }
    }

    /// A store of a new entity apart from the collection under test.
    fn scratch<A: PersistentActor>(&self) -> Result<Store<A>, TestKitError> {
        Ok(self
            .persistence
            .database()
            .store(SCRATCH_COLLECTION, &scratch_id())?)
    }
}

/// Where round trips write: apart from the collection under test, so that its queries and
/// projections never see them.
const SCRATCH_COLLECTION: &str = "rush-testkit-scratch";

/// A new entity id for round trips, never one of the entity under test.
fn scratch_id() -> String {
    static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("rush-testkit-scratch-{n}")
}

fn round_trip_error(
    what: &'static str,
    written: &impl Debug,
    error: rush_store::Error,
) -> TestKitError {
    TestKitError::RoundTrip {
        what,
        written: format!("{written:?}"),
        read: format!("not readable: {error}"),
    }
}
