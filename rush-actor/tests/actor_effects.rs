//! The API around a command: `tell`, ordered pipelining with `send`, reading an entity's
//! state in command order, `Effect::stop` and side effects after persist (`then_run`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

use rush_actor::{CommandError, Effect, Error, EventSourced, Persistence, PersistenceConfig};
use rush_store::PersistentActor;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// What side effects saw, shared with the test.
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn seen() -> Vec<String> {
    SEEN.lock().unwrap().clone()
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Log {
    lines: Vec<String>,
}

#[derive(Debug)]
enum Cmd {
    Add(String),
    /// Adds, then stops the entity.
    AddAndStop(String),
    /// Stops the entity, persisting nothing.
    Stop,
    /// Adds, with a side effect that records the state it sees.
    AddAndRecord(String),
    /// Adds, with a side effect that panics.
    AddAndPanic(String),
    Reject,
}

impl PersistentActor for Log {
    type Event = String;
    fn apply(&mut self, line: &String) {
        self.lines.push(line.clone());
    }
}

impl EventSourced for Log {
    const COLLECTION: &'static str = "logs";
    type Command = Cmd;
    type Reply = usize;
    type Rejection = String;

    fn decide(&self, command: Cmd) -> Result<Effect<Self>, String> {
        let len = |s: &Log| s.lines.len();
        Ok(match command {
            Cmd::Add(line) => Effect::persist(line).then_reply(len),
            Cmd::AddAndStop(line) => Effect::persist(line).then_stop().then_reply(len),
            Cmd::Stop => Effect::stop().then_reply(len),
            Cmd::AddAndRecord(line) => Effect::persist(line.clone())
                .then_run(move |s: &Log| {
                    SEEN.lock()
                        .unwrap()
                        .push(format!("{line}: {}", s.lines.join(",")));
                })
                .then_run(|_| SEEN.lock().unwrap().push("second".into()))
                .then_reply(len),
            Cmd::AddAndPanic(line) => Effect::persist(line)
                .then_run(|_| panic!("side effect fails"))
                .then_reply(len),
            Cmd::Reject => return Err("refused".into()),
        })
    }
}

async fn open() -> Persistence {
    Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap()
}

fn add(line: &str) -> Cmd {
    Cmd::Add(line.to_owned())
}

#[tokio::test]
async fn sent_commands_are_handled_in_send_order_whatever_order_their_replies_are_awaited() {
    let persistence = open().await;
    let log = persistence.entity::<Log>("pipelined");
    let pending: Vec<_> = (0..50)
        .map(|i| log.send(add(&i.to_string())).unwrap())
        .collect();
    // Awaited backwards: the order was fixed when they were sent.
    let mut replies = Vec::new();
    for reply in pending.into_iter().rev() {
        replies.push(reply.await.unwrap());
    }
    assert_eq!(replies, (1..=50).rev().collect::<Vec<_>>());
    let expected: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(log.state().await.unwrap().lines, expected);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn told_commands_are_persisted_in_order_and_a_read_sees_all_of_them() {
    let persistence = open().await;
    let log = persistence.entity::<Log>("told");
    for i in 0..20 {
        log.tell(add(&i.to_string())).unwrap();
    }
    // A rejection told goes nowhere and the entity goes on.
    log.tell(Cmd::Reject).unwrap();
    // The read comes after every command sent before it.
    let lines = log.read(|s| s.lines.len()).await.unwrap();
    assert_eq!(lines, 20);
    let state = log.state().await.unwrap();
    assert_eq!(state.lines.first().map(String::as_str), Some("0"));
    assert_eq!(state.lines.last().map(String::as_str), Some("19"));
    persistence.shutdown().await.unwrap();
    assert!(matches!(log.tell(add("late")), Err(Error::Shutdown)));
    assert!(matches!(log.state().await, Err(Error::Shutdown)));
}

async fn until_stopped(persistence: &Persistence) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while persistence.running_entities() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the entity never stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_stop_passivates_after_the_reply_and_the_next_command_recovers_without_a_restart() {
    let persistence = open().await;
    let log = persistence.entity::<Log>("stopping");
    assert_eq!(log.ask(add("a")).await.unwrap(), 1);
    assert_eq!(log.ask(Cmd::AddAndStop("b".into())).await.unwrap(), 2);
    // Nothing waits: the entity stops and is forgotten until its next command.
    until_stopped(&persistence).await;
    assert!(log.metrics().is_none());
    assert_eq!(log.ask(add("c")).await.unwrap(), 3, "recovered a and b");
    // Commands sent right behind a stop are handled in order, by this incarnation or the
    // next; none is lost and no restart is counted.
    let stop = log.send(Cmd::Stop).unwrap();
    let behind: Vec<_> = ["d", "e"]
        .iter()
        .map(|l| log.send(add(l)).unwrap())
        .collect();
    assert_eq!(stop.await.unwrap(), 3);
    for (reply, expected) in behind.into_iter().zip([4, 5]) {
        assert_eq!(reply.await.unwrap(), expected);
    }
    assert_eq!(log.state().await.unwrap().lines, ["a", "b", "c", "d", "e"]);
    assert_eq!(log.metrics().unwrap().restarts, 0);
    assert_eq!(log.ask(Cmd::Stop).await.unwrap(), 5);
    until_stopped(&persistence).await;
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn side_effects_run_in_order_after_the_event_is_applied_and_never_for_a_rejection() {
    let persistence = open().await;
    let log = persistence.entity::<Log>("effects");
    log.ask(add("a")).await.unwrap();
    log.ask(Cmd::AddAndRecord("b".into())).await.unwrap();
    assert!(matches!(
        log.ask(Cmd::Reject).await,
        Err(CommandError::Rejected(_))
    ));
    let seen: Vec<String> = seen();
    assert_eq!(seen, ["b: a,b", "second"]);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_side_effect_that_panics_still_replies_keeps_the_event_and_restarts_the_actor() {
    let persistence = open().await;
    let log = persistence.entity::<Log>("panicking");
    log.ask(add("a")).await.unwrap();
    assert_eq!(log.ask(Cmd::AddAndPanic("b".into())).await.unwrap(), 2);
    // The next incarnation replays both events.
    assert_eq!(log.ask(add("c")).await.unwrap(), 3);
    let metrics = log.metrics().unwrap();
    assert_eq!(metrics.restarts, 1, "{metrics:?}");
    assert_eq!(log.state().await.unwrap().lines, ["a", "b", "c"]);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_read_that_panics_is_the_readers_error_not_the_entitys() {
    let persistence = open().await;
    let log = persistence.entity::<Log>("reader");
    log.ask(add("a")).await.unwrap();
    let read: Result<usize, Error> = log.read(|_| panic!("reader fails")).await;
    assert!(matches!(read, Err(Error::Stopped { .. })), "{read:?}");
    assert_eq!(log.ask(add("b")).await.unwrap(), 2);
    assert_eq!(log.metrics().unwrap().restarts, 0);
    persistence.shutdown().await.unwrap();
}
