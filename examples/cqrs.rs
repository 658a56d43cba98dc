//! CQRS: bank accounts are persistent actors (the write side); a projection keeps a read
//! model of balances and transaction history in tables of the same sled database (the read
//! side), exactly once: each page of events commits its read-model rows and the projection's
//! checkpoint in one atomic batch. The read model is queried while commands run, then
//! rebuilt from zero, and both versions are printed and compared.
//!
//! Run: `cargo run --release --example cqrs` (data in a temporary folder, removed at the
//! end), or keep it: `cargo run --release --example cqrs -- /tmp/cqrs_data`.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "a demo: it asserts by panicking and indexes fixed tables"
)]

use rush::actor::{
    Delivery, Effect, EventSourced, Persistence, PersistenceConfig, Projection, ProjectionError,
    ProjectionSettings, ProjectionTx,
};
use rush::store::{PersistentActor, SledManager, StoredEvent, Table};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Write side: an account decides, its events change it.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
enum AccountEvent {
    Deposited { cents: u64, memo: String },
    Withdrawn { cents: u64, memo: String },
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Account {
    balance_cents: u64,
}

impl PersistentActor for Account {
    type Event = AccountEvent;
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { cents, .. } => self.balance_cents += cents,
            AccountEvent::Withdrawn { cents, .. } => self.balance_cents -= cents,
        }
    }
}

enum Command {
    Deposit { cents: u64, memo: String },
    Withdraw { cents: u64, memo: String },
    Balance,
}

impl EventSourced for Account {
    const COLLECTION: &'static str = "cqrs-accounts";
    type Command = Command;
    type Reply = u64;
    type Rejection = String;

    fn decide(&self, command: Command) -> Result<Effect<Self>, String> {
        let balance = |s: &Account| s.balance_cents;
        match command {
            Command::Deposit { cents, memo } => {
                Ok(Effect::persist(AccountEvent::Deposited { cents, memo }).then_reply(balance))
            }
            Command::Withdraw { cents, .. } if cents > self.balance_cents => Err(format!(
                "insufficient funds: {} < {cents}",
                self.balance_cents
            )),
            Command::Withdraw { cents, memo } => {
                Ok(Effect::persist(AccountEvent::Withdrawn { cents, memo }).then_reply(balance))
            }
            Command::Balance => Ok(Effect::reply_with(balance)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Read side: balances and statement lines, in tables beside the journal.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BalanceRow {
    cents: u64,
    transactions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HistoryLine {
    offset: u64,
    signed_cents: i64,
    memo: String,
    balance_after: u64,
}

/// Every row of both tables, in key order: what the demo compares.
type Dump = (Vec<(String, BalanceRow)>, Vec<(String, HistoryLine)>);

#[derive(Clone)]
struct ReadModel {
    balances: Table<BalanceRow>,
    history: Table<HistoryLine>,
}

impl ReadModel {
    fn open(persistence: &Persistence) -> Result<Self, rush::actor::Error> {
        Ok(Self {
            balances: persistence.table("cqrs.balances")?,
            history: persistence.table("cqrs.history")?,
        })
    }

    fn dump(&self) -> rush::store::Result<Dump> {
        Ok((self.balances.rows("")?, self.history.rows("")?))
    }
}

impl Projection for ReadModel {
    type Actor = Account;

    fn name(&self) -> &str {
        "cqrs.read-model"
    }

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }

    fn read_model_tables(&self) -> Vec<String> {
        vec![
            self.balances.name().to_owned(),
            self.history.name().to_owned(),
        ]
    }

    async fn handle(
        &mut self,
        event: &StoredEvent<AccountEvent>,
        tx: &mut ProjectionTx,
    ) -> Result<(), ProjectionError> {
        let id = &event.entity_id;
        let mut row = tx.get(&self.balances, id).await?.unwrap_or(BalanceRow {
            cents: 0,
            transactions: 0,
        });
        let (signed_cents, memo) = match &event.event {
            AccountEvent::Deposited { cents, memo } => {
                row.cents += cents;
                (*cents as i64, memo.clone())
            }
            AccountEvent::Withdrawn { cents, memo } => {
                row.cents = row
                    .cents
                    .checked_sub(*cents)
                    .ok_or("the read model would overdraw: an event was counted twice")?;
                (-(*cents as i64), memo.clone())
            }
        };
        row.transactions += 1;
        let line = HistoryLine {
            offset: event.offset,
            signed_cents,
            memo,
            balance_after: row.cents,
        };
        tx.put(
            &self.history,
            &format!("{id}/{:010}", event.sequence_number),
            line,
        )?;
        tx.put(&self.balances, id, row)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------

const ACCOUNTS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
const CLIENTS: u64 = 4;
const COMMANDS_PER_CLIENT: u64 = 150;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let folder = std::env::args()
        .nth(1)
        .map_or_else(|| temp.path().to_path_buf(), std::path::PathBuf::from);
    println!("CQRS demo: journal and read model in {}", folder.display());
    let config = PersistenceConfig {
        encryption_key: Some([11u8; 32].into()),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(SledManager::new(&folder)?, config).await?;
    let model = ReadModel::open(&persistence)?;
    let settings = ProjectionSettings {
        batch_size: 64,
        ..ProjectionSettings::default()
    };
    let projection = persistence
        .spawn_projection_with(model.clone(), settings)
        .await?;

    // Writers: concurrent clients deposit and withdraw (overdrafts are refused).
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let persistence = persistence.clone();
        clients.push(tokio::spawn(async move {
            let mut refused = 0u64;
            for n in 0..COMMANDS_PER_CLIENT {
                let id = ACCOUNTS[((client * 7 + n * 3) % ACCOUNTS.len() as u64) as usize];
                let cents = 100 + (client * 131 + n * 17) % 900;
                let memo = format!("client {client} #{n}");
                let command = if n % 3 == 2 {
                    Command::Withdraw { cents, memo }
                } else {
                    Command::Deposit { cents, memo }
                };
                if persistence
                    .entity::<Account>(id)
                    .ask(command)
                    .await
                    .is_err()
                {
                    refused += 1;
                }
            }
            refused
        }));
    }

    // A reader queries the read model while the commands run.
    while !clients.iter().all(tokio::task::JoinHandle::is_finished) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let lag = projection.lag()?;
        let balances = model.balances.rows("")?;
        let total: u64 = balances.iter().map(|(_, row)| row.cents).sum();
        println!(
            "  [{:>5} ms] read model: {} accounts, {:>8} cents in total, checkpoint {:>4}/{:<4} ({} behind, {:?})",
            started.elapsed().as_millis(),
            balances.len(),
            total,
            lag.checkpoint,
            lag.head,
            lag.offsets_behind,
            lag.time_behind.unwrap_or_default(),
        );
    }
    let mut refused = 0;
    for client in clients {
        refused += client.await?;
    }
    let lag = projection
        .wait_until_caught_up(Duration::from_secs(30))
        .await?;
    println!(
        "{} commands ({refused} refused overdrafts) -> {} events in {:?}; projection caught up at offset {}",
        CLIENTS * COMMANDS_PER_CLIENT,
        lag.head,
        started.elapsed(),
        lag.checkpoint
    );

    // The read model agrees with the actors.
    let (balances, history) = model.dump()?;
    println!("\nread model (built live):");
    print_model(&balances, &history);
    for (id, row) in &balances {
        let actual = persistence
            .entity::<Account>(id)
            .ask(Command::Balance)
            .await?;
        assert_eq!(
            row.cents, actual,
            "read model of {id} disagrees with the actor"
        );
    }
    assert_eq!(
        history.len() as u64,
        lag.head,
        "one statement line per event"
    );

    // Rebuild from zero: same read model.
    let rebuilt_at = Instant::now();
    projection.rebuild().await?;
    projection
        .wait_until_caught_up(Duration::from_secs(30))
        .await?;
    let rebuilt = model.dump()?;
    println!(
        "\nread model (rebuilt from zero in {:?}):",
        rebuilt_at.elapsed()
    );
    print_model(&rebuilt.0, &rebuilt.1);
    assert_eq!(
        rebuilt,
        (balances, history),
        "a rebuild must give the same read model"
    );
    println!("\nrebuilt read model == live read model; every balance matches its actor");

    projection.stop().await?;
    persistence.shutdown().await?;
    Ok(())
}

fn print_model(balances: &[(String, BalanceRow)], history: &[(String, HistoryLine)]) {
    for (id, row) in balances {
        let last = history
            .iter()
            .rev()
            .find(|(key, _)| key.starts_with(&format!("{id}/")))
            .map(|(_, line)| {
                format!(
                    "last: {:+} \"{}\" at offset {}",
                    line.signed_cents, line.memo, line.offset
                )
            })
            .unwrap_or_default();
        println!(
            "  {id:<6} {:>7} cents after {:>3} transactions; {last}",
            row.cents, row.transactions
        );
    }
    println!("  {} statement lines", history.len());
}
