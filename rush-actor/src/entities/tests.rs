use super::key::Claims;
use super::letter::{Stash, Waiting};
use super::{Claim, EntityKey, Stashed};
use crate::behavior::EventSourced;
use crate::effect::Effect;
use crate::error::Error;
use rush_store::PersistentActor;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

macro_rules! actor {
    ($name:ident, $collection:literal) => {
        #[derive(Default, Clone, Serialize, Deserialize)]
        struct $name;
        impl PersistentActor for $name {
            type Event = u8;
            fn apply(&mut self, _: &u8) {}
        }
        impl EventSourced for $name {
            const COLLECTION: &'static str = $collection;
            type Command = u8;
            type Reply = ();
            type Rejection = String;
            fn decide(&self, _: u8) -> Result<Effect<Self>, String> {
                Ok(Effect::reply_with(|_: &$name| ()))
            }
        }
    };
}

actor!(Slashed, "a/b");
actor!(Plain, "a");
actor!(Twin, "a");

#[test]
fn a_collection_and_an_id_that_join_to_one_path_are_two_keys() {
    let slashed = EntityKey::of::<Slashed>("c");
    let plain = EntityKey::of::<Plain>("b/c");
    assert_eq!(slashed.to_string(), plain.to_string());
    assert_ne!(slashed, plain);
}

#[test]
fn a_second_actor_type_on_a_claimed_collection_is_refused() {
    let mut claims = Claims::default();
    assert!(claims.check(Claim::of::<Plain>()).is_ok());
    assert!(claims.check(Claim::of::<Slashed>()).is_ok());
    assert!(
        claims.check(Claim::of::<Plain>()).is_ok(),
        "the owner again"
    );
    match claims.check(Claim::of::<Twin>()) {
        Err(Error::CollectionClaimed {
            collection,
            owner,
            other,
        }) => {
            assert_eq!(collection, "a");
            assert!(owner.ends_with("Plain") && other.ends_with("Twin"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_waiting_command_is_counted_until_it_is_dropped_and_the_count_never_wraps() {
    let counter = Arc::new(AtomicUsize::new(0));
    let first = Waiting::new(Arc::clone(&counter));
    let second = Waiting::new(Arc::clone(&counter));
    assert_eq!(counter.load(Ordering::SeqCst), 2);
    drop(first);
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    // Even if something else reset the count, a drop saturates at zero.
    counter.store(0, Ordering::SeqCst);
    drop(second);
    assert_eq!(counter.load(Ordering::SeqCst), 0);
    counter.store(usize::MAX, Ordering::SeqCst);
    let _third = Waiting::new(Arc::clone(&counter));
    assert_eq!(counter.load(Ordering::SeqCst), usize::MAX);
}

#[test]
fn a_stash_starts_empty() {
    let stash = Stash::<Plain>::new();
    assert!(stash.is_empty());
}

#[test]
fn the_lifecycle_table_covers_every_phase() {
    let module = include_str!("../entities.rs");
    let table: Vec<&str> = module
        .lines()
        .filter(|line| line.starts_with("//! | "))
        .collect();
    for phase in ["Running", "BackingOff", "Passivating", "GaveUp", "absent"] {
        let from = table
            .iter()
            .filter(|row| row.split('|').nth(1).is_some_and(|c| c.contains(phase)))
            .count();
        let to = table
            .iter()
            .filter(|row| row.split('|').nth(3).is_some_and(|c| c.contains(phase)))
            .count();
        assert!(
            from > 0 && to > 0,
            "{phase}: {from} rows from it, {to} into it"
        );
    }
}
