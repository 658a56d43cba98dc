//! Rush's metrics in Prometheus' text format.
//!
//! Rush records through the `metrics` facade; the application installs an exporter. Here
//! `metrics-exporter-prometheus` renders them. The example runs a small bank workload on an
//! in-memory journal (deposits, a rejection, a crash and restart, snapshots, a projection,
//! a subscription),
//! then prints what a Prometheus scrape of `/metrics` would get.
//!
//! ```sh
//! cargo run --example metrics                            # print once and exit
//! cargo run --example metrics -- --serve 127.0.0.1:9898  # then serve /metrics until Ctrl-C
//! ```

#![allow(clippy::panic)] // Command::Crash panics on purpose.

use metrics_exporter_prometheus::PrometheusBuilder;
use rush::prelude::*;
use rush::{ProjectionHandle, metrics as metric_names};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Event {
    Deposited(u64),
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Account {
    balance: u64,
}

enum Command {
    Deposit(u64),
    Crash,
}

impl PersistentActor for Account {
    type Event = Event;
    fn apply(&mut self, Event::Deposited(cents): &Event) {
        self.balance += cents;
    }
}

impl EventSourced for Account {
    const COLLECTION: &'static str = "metrics_accounts";
    type Command = Command;
    type Reply = u64;
    type Rejection = String;

    fn decide(&self, command: Command) -> std::result::Result<Effect<Self>, String> {
        match command {
            Command::Deposit(0) => Err("nothing to deposit".into()),
            Command::Deposit(cents) => {
                Ok(Effect::persist(Event::Deposited(cents)).then_reply(|s: &Account| s.balance))
            }
            Command::Crash => {
                panic!("a handler bug, on purpose: the supervisor restarts the actor")
            }
        }
    }
}

/// Counts deposits; its lag is a metric.
struct Deposits;

impl Projection for Deposits {
    type Actor = Account;
    fn name(&self) -> &str {
        "deposits"
    }
    async fn handle(
        &mut self,
        _event: &StoredEvent<Event>,
        _tx: &mut ProjectionTx,
    ) -> std::result::Result<(), ProjectionError> {
        Ok(())
    }
}

async fn workload() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut config = PersistenceConfig {
        snapshots: SnapshotPolicy::every(10),
        ..PersistenceConfig::default()
    };
    config.restart.min_backoff = Duration::from_millis(1);
    let persistence = Persistence::open(MemoryManager::default(), config).await?;
    let deposits: ProjectionHandle = persistence.spawn_projection(Deposits).await?;
    let mut live = persistence
        .query::<Account>()?
        .subscribe(0, EventFilter::all());
    let mut replies = Vec::new();
    for client in 0..20 {
        let account = persistence.entity::<Account>(&format!("acc-{client}"));
        for cents in 1..=25 {
            replies.push(account.send(Command::Deposit(cents))?);
        }
    }
    for reply in replies {
        reply.await?;
    }
    let account = persistence.entity::<Account>("acc-0");
    let _rejected = account.ask(Command::Deposit(0)).await;
    let _crashed = account.ask(Command::Crash).await;
    account.ask(Command::Deposit(1)).await?;
    deposits
        .wait_until_caught_up(Duration::from_secs(10))
        .await?;
    live.next().await.transpose()?;
    persistence.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    metric_names::describe();
    workload().await?;
    let text = handle.render();
    print!("{text}");
    let missing: Vec<&str> = metric_names::ALL
        .iter()
        .copied()
        .filter(|name| !text.contains(name))
        .collect();
    if !missing.is_empty() {
        return Err(format!("metrics not recorded: {missing:?}").into());
    }
    eprintln!("all {} Rush metrics recorded", metric_names::ALL.len());

    let mut args = std::env::args().skip(1);
    if let (Some(flag), Some(address)) = (args.next(), args.next())
        && flag == "--serve"
    {
        let listener = std::net::TcpListener::bind(&address)?;
        eprintln!("serving http://{address}/metrics (Ctrl-C to stop)");
        for stream in listener.incoming() {
            let mut stream = stream?;
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request)?;
            let body = handle.render();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
        }
    }
    Ok(())
}
