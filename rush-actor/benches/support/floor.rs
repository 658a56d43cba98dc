//! The floor under the CPU per command: the actor rows' drivers (one task per client, one
//! deposit at a time) against less than a persistent actor on an engine.
//! - [`ractor_row`]: plain ractor actors that add the deposit to a balance in memory and
//!   reply. No journal, no entity table, no encoding: what ractor's `call` and tokio cost.
//! - [`store_row`]: one `Store` per task, persisting the deposit event straight through
//!   `Store::persist_async`: the store and the writer without the actor layer (on
//!   `engine::Discard`, without an engine either).
#![allow(dead_code)]

use super::bank::{Account, account_id, deposited};
use super::measure::{self, cpu_sample};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::future::Future;
use std::time::{Duration, Instant};

/// What one floor row measured.
pub struct FloorRow {
    pub rate: f64,
    pub cpu_per_command: Duration,
    pub p50: Duration,
}

/// A deposit asked of a plain actor (the bank command's fields, plus ractor's reply port).
pub struct Deposit {
    pub account: String,
    pub amount_cents: u64,
    pub tag: u64,
    pub reply: RpcReplyPort<u64>,
}

/// An account kept in memory by a plain ractor actor.
pub struct PlainAccount;

impl Actor for PlainAccount {
    type Msg = Deposit;
    type State = u64;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Deposit>,
        (): (),
    ) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Deposit>,
        message: Deposit,
        balance: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        *balance += message.amount_cents;
        let _ = message.reply.send(*balance);
        Ok(())
    }
}

/// `actors` plain actors, each asked by its own task one deposit at a time for `window`
/// after `warmup`.
pub async fn ractor_row(actors: usize, warmup: Duration, window: Duration) -> FloorRow {
    let mut refs = Vec::with_capacity(actors);
    let mut handles = Vec::with_capacity(actors);
    for _ in 0..actors {
        let (actor, handle) = Actor::spawn(None, PlainAccount, ()).await.unwrap();
        refs.push(actor);
        handles.push(handle);
    }
    let clients = refs
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, actor)| PlainClient {
            actor,
            account: account_id(i),
        });
    let row = drive(clients.collect(), warmup, window).await;
    for actor in &refs {
        actor.stop(None);
    }
    for handle in handles {
        let _ = handle.await;
    }
    row
}

/// `tasks` tasks, each persisting deposit events through a store of its own, one at a
/// time, for `window` after `warmup`.
pub async fn store_row(
    db: &rush_store::Database,
    tasks: usize,
    warmup: Duration,
    window: Duration,
) -> FloorRow {
    let clients = (0..tasks).map(|i| {
        let account = account_id(i);
        StoreClient {
            store: db.store::<Account>("accounts", &account).unwrap(),
            account,
            metadata: rush_store::EventMetadata::default(),
        }
    });
    drive(clients.collect(), warmup, window).await
}

/// One client of a floor row: sends one command and waits for its outcome.
trait Client: Send + 'static {
    fn command(&mut self, tag: u64) -> impl Future<Output = ()> + Send + '_;
}

struct PlainClient {
    actor: ActorRef<Deposit>,
    account: String,
}

impl Client for PlainClient {
    async fn command(&mut self, tag: u64) {
        let account = self.account.clone();
        ractor::call!(self.actor, |reply| Deposit {
            account,
            amount_cents: 100 + (tag % 900),
            tag,
            reply,
        })
        .expect("deposit");
    }
}

struct StoreClient {
    store: rush_store::Store<Account>,
    account: String,
    metadata: rush_store::EventMetadata,
}

impl Client for StoreClient {
    async fn command(&mut self, tag: u64) {
        let event = deposited(&self.account, 100 + (tag % 900), tag);
        self.store
            .persist_async(&[event], &self.metadata)
            .await
            .expect("persist");
    }
}

/// One task per client, each sending command `tag` = 1, 2, ... one after the other until
/// the window closes: commands/s, this process's CPU per command and p50 in the window.
async fn drive(clients: Vec<impl Client>, warmup: Duration, window: Duration) -> FloorRow {
    let measure_from = Instant::now() + warmup;
    let measure_to = measure_from + window;
    let drivers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(4096);
                let mut tag = 0u64;
                loop {
                    let sent = Instant::now();
                    if sent >= measure_to {
                        break;
                    }
                    tag += 1;
                    client.command(tag).await;
                    let replied = Instant::now();
                    if replied >= measure_from && replied <= measure_to {
                        latencies.push(replied - sent);
                    }
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_from = cpu_sample();
    tokio::time::sleep_until(measure_to.into()).await;
    let cpu_to = cpu_sample();
    let mut latencies = Vec::new();
    for d in drivers {
        latencies.extend(d.await.unwrap());
    }
    latencies.sort_unstable();
    let commands = latencies.len() as u64;
    FloorRow {
        rate: commands as f64 / window.as_secs_f64(),
        cpu_per_command: measure::cpu::per_each(cpu_to.own.saturating_sub(cpu_from.own), commands),
        p50: measure::percentile(&latencies, 0.50),
    }
}
