//! The extension can live under an application's own ractor supervisor: its supervisor is
//! a child of the application's actor, which hears it start and, after shutdown, stop.
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
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use rush_actor::{Persistence, PersistenceConfig};
use std::time::Duration;
use tokio::sync::mpsc;

/// The application's supervisor: reports what it hears from its children.
struct App;

impl Actor for App {
    type Msg = ();
    type State = mpsc::UnboundedSender<String>;
    type Arguments = mpsc::UnboundedSender<String>;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        heard: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(heard)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<()>,
        event: SupervisionEvent,
        heard: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let what = match &event {
            SupervisionEvent::ActorStarted(cell) => format!("started {:?}", cell.get_name()),
            SupervisionEvent::ActorTerminated(cell, ..) => {
                format!("terminated {:?}", cell.get_name())
            }
            SupervisionEvent::ActorFailed(cell, _) => format!("failed {:?}", cell.get_name()),
            _ => return Ok(()),
        };
        let _ = heard.send(what);
        Ok(())
    }
}

async fn next(heard: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), heard.recv())
        .await
        .expect("the application's supervisor heard nothing")
        .unwrap()
}

#[tokio::test]
async fn the_extension_supervisor_runs_under_the_application_supervisor() {
    let (tell, mut heard) = mpsc::unbounded_channel();
    let (app, app_task) = Actor::spawn(None, App, tell).await.unwrap();
    assert!(app.get_children().is_empty());

    let persistence = Persistence::open_linked(
        engine_under_test::fresh(),
        PersistenceConfig::default(),
        app.get_cell(),
    )
    .await
    .unwrap();
    let children = app.get_children();
    assert_eq!(children.len(), 1, "the extension's supervisor is its child");
    let name = children[0].get_name().unwrap();
    assert!(
        name.starts_with("rush/") && name.ends_with("/supervisor"),
        "{name}"
    );
    assert_eq!(next(&mut heard).await, format!("started {:?}", Some(&name)));

    let account = persistence.get_or_spawn::<Account>("linked").await.unwrap();
    assert_eq!(account.ask(deposit(3, 1)).await.unwrap(), 3);
    assert_eq!(
        app.get_children().len(),
        1,
        "entities stay under the extension"
    );

    persistence.shutdown().await.unwrap();
    assert_eq!(
        next(&mut heard).await,
        format!("terminated {:?}", Some(&name))
    );
    assert!(app.get_children().is_empty());
    app.stop(None);
    app_task.await.unwrap();
}

#[tokio::test]
async fn when_the_application_supervisor_stops_every_call_is_shut_down() {
    let (tell, _heard) = mpsc::unbounded_channel();
    let (app, app_task) = Actor::spawn(None, App, tell).await.unwrap();
    let persistence = Persistence::open_linked(
        engine_under_test::fresh(),
        PersistenceConfig {
            ask_timeout: Duration::from_secs(600),
            ..PersistenceConfig::default()
        },
        app.get_cell(),
    )
    .await
    .unwrap();
    let account = persistence.get_or_spawn::<Account>("orphan").await.unwrap();
    account.ask(deposit(1, 1)).await.unwrap();
    app.stop(None);
    app_task.await.unwrap();
    // ractor stops the application's children with it; the extension then refuses work.
    let asked = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match account.ask(deposit(1, 2)).await {
                Err(rush_actor::CommandError::Failed(rush_actor::Error::Shutdown)) => break,
                _ => tokio::task::yield_now().await,
            }
        }
    })
    .await;
    assert!(asked.is_ok(), "asks were never refused with Shutdown");
    persistence.shutdown().await.unwrap();
}
