//! The rows' driver ([`drive`]: one task per client, one command at a time, a measured
//! window), and the floor under the CPU per command: the same drivers against less than a
//! persistent actor on an engine.
//! - [`ractor_row`]: plain ractor actors that add the deposit to a balance in memory and
//!   reply. No journal, no entity table, no encoding: what ractor's `call` and tokio cost.
//! - [`store_row`]: one `Store` per task, persisting the deposit event straight through
//!   `Store::persist_async`: the store and the writer without the actor layer (on
//!   `engine::Discard`, without an engine either).
#![allow(dead_code)]

use super::bank::{Account, account_id, deposited};
use super::engine::Discard;
use super::measure::{self, CpuSample, cpu_sample};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rush_actor::{Persistence, PersistenceConfig};
use rush_store::Backend;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one floor row measured.
pub struct FloorRow {
    pub rate: f64,
    pub cpu_per_command: Duration,
    pub p50: Duration,
}

/// The floor under the CPU per command, below any engine: what plain ractor actors and
/// Rush's stores cost without an engine.
pub struct Floor {
    /// One store per task persisting straight through `Store::persist_async`, on
    /// [`Discard`].
    stores: FloorRow,
    /// Plain ractor actors, each journaling through a store of its own on [`Discard`]
    /// before it replies: ractor and the store without Rush's actor layer.
    ractor_stores: FloorRow,
    /// Plain ractor actors keeping a balance in memory: no journal at all.
    ractor: FloorRow,
}

impl Floor {
    /// The three rows with `clients` clients each.
    pub async fn measure(clients: usize, warmup: Duration, window: Duration) -> Self {
        let backend: Arc<dyn Backend> = Arc::new(Discard);
        let persistence = Persistence::open_shared(backend, PersistenceConfig::default())
            .await
            .unwrap();
        let db = persistence.database();
        let stores = store_row(db, clients, warmup, window).await;
        let ractor_stores = ractor_row(clients, Some(db), warmup, window).await;
        persistence.shutdown().await.unwrap();
        let ractor = ractor_row(clients, None, warmup, window).await;
        Self {
            stores,
            ractor_stores,
            ractor,
        }
    }

    /// The floor's line, beside `no_engine`: the CPU per command of the persistent actors on
    /// [`Discard`].
    pub fn describe(&self, clients: usize, no_engine: Duration) -> String {
        let cpu = |row: &FloorRow| measure::cpu::per_op(row.cpu_per_command, 1);
        format!(
            "the floor at {clients} clients, CPU per command: the same actors on an engine \
             that keeps nothing {}; plain ractor actors journaling through a store each on \
             that engine {}; the stores alone, without actors, {}; plain ractor actors \
             keeping a balance in memory {}",
            measure::cpu::per_op(no_engine, 1),
            cpu(&self.ractor_stores),
            cpu(&self.stores),
            cpu(&self.ractor)
        )
    }
}

/// A deposit asked of a plain actor (the bank command's fields, plus ractor's reply port).
pub struct Deposit {
    pub account: String,
    pub amount_cents: u64,
    pub tag: u64,
    pub reply: RpcReplyPort<u64>,
}

/// An account kept in memory by a plain ractor actor, which journals each deposit through
/// a store of its own first when it has one.
pub struct PlainAccount;

/// A plain actor's balance, and its store if it journals.
pub struct PlainState {
    balance: u64,
    journal: Option<(rush_store::Store<Account>, rush_store::EventMetadata)>,
}

impl Actor for PlainAccount {
    type Msg = Deposit;
    type State = PlainState;
    type Arguments = Option<rush_store::Store<Account>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Deposit>,
        store: Self::Arguments,
    ) -> Result<PlainState, ActorProcessingErr> {
        Ok(PlainState {
            balance: 0,
            journal: store.map(|store| (store, rush_store::EventMetadata::default())),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Deposit>,
        message: Deposit,
        state: &mut PlainState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((store, metadata)) = &mut state.journal {
            let event = deposited(&message.account, message.amount_cents, message.tag);
            store.persist_async(&[event], metadata).await?;
        }
        state.balance += message.amount_cents;
        let _ = message.reply.send(state.balance);
        Ok(())
    }
}

/// `actors` plain actors, each asked by its own task one deposit at a time for `window`
/// after `warmup`; with `db`, each journals its deposits through a store of `db` (no
/// entity table, letters, snapshots or metrics: ractor and the store alone).
pub async fn ractor_row(
    actors: usize,
    db: Option<&rush_store::Database>,
    warmup: Duration,
    window: Duration,
) -> FloorRow {
    let mut refs = Vec::with_capacity(actors);
    let mut handles = Vec::with_capacity(actors);
    for i in 0..actors {
        let store = db.map(|db| db.store::<Account>("accounts", &account_id(i)).unwrap());
        let (actor, handle) = Actor::spawn(None, PlainAccount, store).await.unwrap();
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
    let row = floor_row(clients.collect(), warmup, window).await;
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
    floor_row(clients.collect(), warmup, window).await
}

/// One client of a measured row: sends one command and waits for its outcome.
pub trait Client: Send + 'static {
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

/// What the window of one measured row saw: every latency that ended inside it, sorted;
/// the CPU samples and `sample()` at its two ends.
pub struct Window<T> {
    pub latencies: Vec<Duration>,
    pub cpu_from: CpuSample,
    pub cpu_to: CpuSample,
    pub from: T,
    pub to: T,
}

impl<T> Window<T> {
    /// Commands whose reply landed inside the window.
    pub fn commands(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// This process's CPU time (every thread) per command in the window.
    pub fn cpu_per_command(&self) -> Duration {
        measure::cpu::per_each(
            self.cpu_to.own.saturating_sub(self.cpu_from.own),
            self.commands(),
        )
    }
}

/// One task per client, each sending command `tag` = 1, 2, ... one after the other until
/// the window (`window` after `warmup`) closes; `sample` runs at the window's two ends.
pub async fn drive<T>(
    clients: Vec<impl Client>,
    warmup: Duration,
    window: Duration,
    sample: impl Fn() -> T,
) -> Window<T> {
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
                    // Counted when the reply lands inside the window.
                    if replied >= measure_from && replied <= measure_to {
                        latencies.push(replied - sent);
                    }
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let from = sample();
    let cpu_from = cpu_sample();
    tokio::time::sleep_until(measure_to.into()).await;
    let to = sample();
    let cpu_to = cpu_sample();
    let mut latencies = Vec::new();
    for d in drivers {
        latencies.extend(d.await.unwrap());
    }
    latencies.sort_unstable();
    Window {
        latencies,
        cpu_from,
        cpu_to,
        from,
        to,
    }
}

/// A floor row from its window.
async fn floor_row(clients: Vec<impl Client>, warmup: Duration, window: Duration) -> FloorRow {
    let measured = drive(clients, warmup, window, || ()).await;
    FloorRow {
        rate: measured.commands() as f64 / window.as_secs_f64(),
        cpu_per_command: measured.cpu_per_command(),
        p50: measure::percentile(&measured.latencies, 0.50),
    }
}
