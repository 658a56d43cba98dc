//! The smallest persistent actor: a running total of `u64` events, for tests about
//! engines rather than behaviour.
#![allow(dead_code)]

use rush_store::PersistentActor;
use serde::{Deserialize, Serialize};

/// The sum of every event applied.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Counter {
    pub total: u64,
}

impl PersistentActor for Counter {
    type Event = u64;
    fn apply(&mut self, n: &u64) {
        self.total += n;
    }
}
