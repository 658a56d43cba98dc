//! Identity: an entity is a typed (collection, id) pair. Strings that join to the same
//! path are still two entities, each served by its own actor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

use rush_actor::{Effect, EventSourced, Persistence, PersistenceConfig};
use rush_store::PersistentActor;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Counts in collection "a/b"; its commands are numbers.
#[derive(Default, Clone, Serialize, Deserialize)]
struct Numbers {
    total: u64,
}

impl PersistentActor for Numbers {
    type Event = u64;
    fn apply(&mut self, n: &u64) {
        self.total += n;
    }
}

impl EventSourced for Numbers {
    const COLLECTION: &'static str = "a/b";
    type Command = u64;
    type Reply = u64;
    type Rejection = String;
    fn decide(&self, n: u64) -> Result<Effect<Self>, String> {
        Ok(Effect::persist(n).then_reply(|s: &Numbers| s.total))
    }
}

/// Collects words in collection "a"; its commands are strings.
#[derive(Default, Clone, Serialize, Deserialize)]
struct Words {
    words: Vec<String>,
}

impl PersistentActor for Words {
    type Event = String;
    fn apply(&mut self, word: &String) {
        self.words.push(word.clone());
    }
}

impl EventSourced for Words {
    const COLLECTION: &'static str = "a";
    type Command = String;
    type Reply = usize;
    type Rejection = String;
    fn decide(&self, word: String) -> Result<Effect<Self>, String> {
        Ok(Effect::persist(word).then_reply(|s: &Words| s.words.len()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_and_an_id_that_join_to_one_path_are_two_entities() {
    let config = PersistenceConfig {
        ask_timeout: Duration::from_secs(2),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::fresh(), config)
        .await
        .unwrap();
    // "a/b" + "c" and "a" + "b/c" both read "a/b/c" once joined with '/'.
    let numbers = persistence.entity::<Numbers>("c");
    let words = persistence.entity::<Words>("b/c");
    assert_eq!(numbers.ask(5).await.unwrap(), 5);
    // On its own task: sharing one actor used to spin a worker past the ask's deadline.
    let started = Instant::now();
    let asked = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::spawn(async move { words.ask("hello".to_owned()).await }),
    )
    .await
    .expect("no spinning");
    assert_eq!(asked.unwrap().unwrap(), 1);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(numbers.ask(2).await.unwrap(), 7);
    assert_eq!(persistence.running_entities(), 2);
    persistence.shutdown().await.unwrap();
}
