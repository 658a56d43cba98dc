//! Schema evolution: upcasters turn an event payload written with an older schema version
//! into the next version, step by step (v1 -> v2 -> v3), when it is read. Stored events are
//! never rewritten; old bytes stay valid forever.

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::fmt;

type Step = Box<dyn Fn(&[u8]) -> Result<Vec<u8>> + Send + Sync>;

/// Any event type: an upcaster registered for it applies to every type without its own.
pub const ANY_EVENT_TYPE: &str = "*";

/// The upcasters of one event type, by event type name and the version they upgrade from.
///
/// ```
/// use rush_store::Upcasters;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// enum EventV1 { Deposited(u64) }
/// #[derive(Serialize, Deserialize)]
/// enum EventV2 { Deposited { cents: u64, currency: String } }
///
/// let mut upcasters = Upcasters::default();
/// upcasters.register("Deposited", 1, |old: EventV1| match old {
///     EventV1::Deposited(n) => EventV2::Deposited { cents: n * 100, currency: "EUR".into() },
/// });
/// assert!(upcasters.has_step("Deposited", 1));
/// ```
#[derive(Default)]
pub struct Upcasters {
    steps: HashMap<(String, u32), Step>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.steps.keys().collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}

impl Upcasters {
    /// Registers the step from `from_version` to `from_version + 1` for events of type
    /// `event_type` ([`ANY_EVENT_TYPE`] for all): the stored payload is decoded as `Old`,
    /// converted, and encoded as `New`, which the next step (or the current event type)
    /// decodes. A later registration for the same type and version replaces the earlier.
    pub fn register<Old, New>(
        &mut self,
        event_type: &str,
        from_version: u32,
        convert: impl Fn(Old) -> New + Send + Sync + 'static,
    ) -> &mut Self
    where
        Old: DeserializeOwned,
        New: Serialize,
    {
        let step: Step = Box::new(move |bytes| {
            let old: Old = crate::codec::deserialize_exact(bytes)?;
            crate::codec::serialize(&convert(old))
        });
        self.steps
            .insert((event_type.to_owned(), from_version), step);
        self
    }

    /// Whether a step from `from_version` is registered for `event_type` (or for all).
    pub fn has_step(&self, event_type: &str, from_version: u32) -> bool {
        self.step(event_type, from_version).is_some()
    }

    /// Whether no upcaster is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    fn step(&self, event_type: &str, from_version: u32) -> Option<&Step> {
        self.steps
            .get(&(event_type.to_owned(), from_version))
            .or_else(|| self.steps.get(&(ANY_EVENT_TYPE.to_owned(), from_version)))
    }

    /// Upgrades `payload` of `event_type` from `version` to `target`; `None` when it is
    /// already there. A missing step, or a version newer than `target`, is an error that
    /// names the event type and versions.
    pub(crate) fn upcast(
        &self,
        event_type: &str,
        version: u32,
        target: u32,
        payload: &[u8],
        describe: &dyn Fn() -> String,
    ) -> Result<Option<Vec<u8>>> {
        if version == target {
            return Ok(None);
        }
        if version > target {
            return Err(Error::Serialization(format!(
                "{}: event type {event_type:?} was written with schema version {version}, newer than this build's {target}",
                describe()
            )));
        }
        let mut current: Option<Vec<u8>> = None;
        for from in version..target {
            let step = self.step(event_type, from).ok_or_else(|| {
                Error::Serialization(format!(
                    "{}: no upcaster for event type {event_type:?} from schema version {from} (current is {target})",
                    describe()
                ))
            })?;
            let input = current.as_deref().unwrap_or(payload);
            current = Some(step(input).map_err(|e| {
                Error::Serialization(format!(
                    "{}: upcasting {event_type:?} from version {from} failed: {e}",
                    describe()
                ))
            })?);
        }
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe() -> String {
        "event 1 of \"c\"/\"e\"".into()
    }

    /// Steps that append a marker, so the result shows which steps ran, in what order.
    fn marking() -> Upcasters {
        let mut upcasters = Upcasters::default();
        upcasters
            .register(ANY_EVENT_TYPE, 1, |s: String| s + " any1")
            .register("T", 1, |s: String| s + " T1")
            .register(ANY_EVENT_TYPE, 2, |s: String| s + " any2")
            .register("T", 3, |s: String| s + " T3");
        upcasters
    }

    fn run(upcasters: &Upcasters, event_type: &str, from: u32, to: u32) -> Result<Option<String>> {
        let payload = crate::codec::serialize(&"v".to_owned())?;
        upcasters
            .upcast(event_type, from, to, &payload, &describe)?
            .map(|bytes| crate::codec::deserialize_exact(&bytes))
            .transpose()
    }

    #[test]
    fn steps_run_in_version_order_and_a_type_step_wins_over_the_catch_all() -> Result<()> {
        let upcasters = marking();
        assert_eq!(run(&upcasters, "T", 1, 4)?.as_deref(), Some("v T1 any2 T3"));
        assert_eq!(run(&upcasters, "T", 2, 3)?.as_deref(), Some("v any2"));
        assert_eq!(run(&upcasters, "U", 1, 3)?.as_deref(), Some("v any1 any2"));
        // Already current: nothing to do, the stored bytes are decoded as they are.
        assert_eq!(run(&upcasters, "T", 4, 4)?, None);
        Ok(())
    }

    #[test]
    fn a_gap_or_a_newer_version_is_an_error_naming_type_and_versions() {
        let upcasters = marking();
        let Err(Error::Serialization(gap)) = run(&upcasters, "U", 1, 4) else {
            panic!("U has no step from 3");
        };
        assert!(
            gap.contains("\"U\"")
                && gap.contains("from schema version 3")
                && gap.contains("current is 4"),
            "{gap}"
        );
        assert!(gap.starts_with(&describe()), "{gap}");
        let Err(Error::Serialization(newer)) = run(&upcasters, "T", 5, 4) else {
            panic!("5 is newer than 4");
        };
        assert!(
            newer.contains("\"T\"")
                && newer.contains("schema version 5")
                && newer.contains("this build's 4"),
            "{newer}"
        );
    }

    #[test]
    fn a_step_that_cannot_decode_its_input_names_the_step() {
        let mut upcasters = Upcasters::default();
        upcasters.register("T", 1, |n: u64| n + 1);
        let Err(Error::Serialization(message)) = run(&upcasters, "T", 1, 2) else {
            panic!("a string is not a u64 without trailing bytes");
        };
        assert!(
            message.contains("upcasting \"T\" from version 1"),
            "{message}"
        );
    }
}
