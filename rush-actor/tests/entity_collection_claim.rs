//! Two actor types that name one collection: the first type used owns it; the second gets
//! a typed error at once, from every entry point, never a hang.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

#[path = "support/account.rs"]
mod account;

use account::{Account, deposit};
use rush_actor::{CommandError, Effect, Error, EventSourced, Persistence, PersistenceConfig};
use rush_store::PersistentActor;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Another actor type that also claims "accounts".
#[derive(Default, Clone, Serialize, Deserialize)]
struct Impostor;

impl PersistentActor for Impostor {
    type Event = String;
    fn apply(&mut self, _: &String) {}
}

impl EventSourced for Impostor {
    const COLLECTION: &'static str = "accounts";
    type Command = String;
    type Reply = ();
    type Rejection = String;
    fn decide(&self, word: String) -> Result<Effect<Self>, String> {
        Ok(Effect::persist(word).then_reply(|_: &Impostor| ()))
    }
}

fn claimed(error: &Error) -> bool {
    matches!(error, Error::CollectionClaimed { collection, owner, other }
        if collection == "accounts" && owner.ends_with("Account") && other.ends_with("Impostor"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_actor_type_on_one_collection_is_refused_at_once() {
    let config = PersistenceConfig {
        ask_timeout: Duration::from_secs(600),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::fresh(), config)
        .await
        .unwrap();
    let account = persistence
        .get_or_spawn::<Account>("same-id")
        .await
        .unwrap();
    account.ask(deposit(1, 1)).await.unwrap();

    let at_once = Duration::from_secs(2);
    let impostor = persistence.entity::<Impostor>("same-id");
    let asked = tokio::time::timeout(at_once, impostor.ask("x".into()))
        .await
        .expect("no hang");
    assert!(
        matches!(&asked, Err(CommandError::Failed(e)) if claimed(e)),
        "{asked:?}"
    );
    let other_id = tokio::time::timeout(at_once, persistence.get_or_spawn::<Impostor>("other"))
        .await
        .expect("no hang");
    assert!(matches!(&other_id, Err(e) if claimed(e)), "{other_id:?}");
    let spawned = tokio::time::timeout(at_once, persistence.spawn::<Impostor>("third"))
        .await
        .expect("no hang");
    assert!(matches!(&spawned, Err(e) if claimed(e)), "{spawned:?}");
    // The owner is unharmed.
    assert_eq!(account.ask(deposit(1, 2)).await.unwrap(), 2);
    persistence.shutdown().await.unwrap();
}
