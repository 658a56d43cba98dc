//! Money transfers as persistent sagas: debit, then credit; a refused credit refunds the
//! debit; a crash in the middle of a transfer is resumed by the next process.
//!
//! Run: `cargo run --release --example saga` (data in a temporary folder), or pass a
//! folder: `cargo run --release --example saga -- /tmp/saga_data`.
//!
//! The example runs itself twice: a child process opens the accounts, runs transfers, and
//! is killed (SIGKILL) right after a transfer's debit was applied and before the saga
//! journaled it. The parent then restarts the system on the same folder, resumes the
//! saga (the debit is repeated with the same idempotency key, and the account does not
//! apply it twice), and checks that money is conserved.

use rush::actor::{
    CommandError, Effect, EventSourced, IdempotencyKeys, Persistence, PersistenceConfig,
    SagaDefinition, SagaOutcome, SagaStatus, SagaStep, Sagas, StepContext, StepError,
};
use rush::store::{PersistentActor, SledManager};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

// ---------------------------------------------------------------------------------------
// The account: applies each keyed command once, so a saga may repeat a command safely.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AccountEvent {
    Opened { initial: u64 },
    Debited { amount: u64, key: String },
    Credited { amount: u64, key: String },
    Closed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
enum Status {
    #[default]
    Missing,
    Open,
    Closed,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    balance: u64,
    status: Status,
    /// The keys of the commands applied recently: snapshotted and replayed with the state.
    applied: IdempotencyKeys,
}

#[derive(Debug)]
enum AccountCmd {
    Open { initial: u64 },
    Debit { amount: u64, key: String },
    Credit { amount: u64, key: String },
    Close,
    Balance,
}

impl PersistentActor for Account {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { initial } => {
                self.status = Status::Open;
                self.balance = *initial;
            }
            AccountEvent::Debited { amount, key } => {
                self.balance = self.balance.saturating_sub(*amount);
                self.applied.insert(key.as_str());
            }
            AccountEvent::Credited { amount, key } => {
                self.balance += amount;
                self.applied.insert(key.as_str());
            }
            AccountEvent::Closed => self.status = Status::Closed,
        }
    }
}

impl EventSourced for Account {
    const COLLECTION: &'static str = "accounts";
    type Command = AccountCmd;
    type Reply = u64;
    type Rejection = String;

    fn decide(&self, command: AccountCmd) -> Result<Effect<Self>, String> {
        let balance = |s: &Account| s.balance;
        match command {
            AccountCmd::Balance => Ok(Effect::reply_with(balance)),
            // Opening is done once: a second run on the same folder changes nothing.
            AccountCmd::Open { .. } if self.status != Status::Missing => {
                Ok(Effect::reply_with(balance))
            }
            AccountCmd::Open { initial } => {
                Ok(Effect::persist(AccountEvent::Opened { initial }).then_reply(balance))
            }
            AccountCmd::Close => Ok(Effect::persist(AccountEvent::Closed).then_reply(balance)),
            // A repeat of a command already applied: answer it, apply nothing.
            AccountCmd::Debit { key, .. } | AccountCmd::Credit { key, .. }
                if self.applied.contains(&key) =>
            {
                Ok(Effect::reply_with(balance))
            }
            AccountCmd::Debit { .. } | AccountCmd::Credit { .. } if self.status != Status::Open => {
                Err(format!("account is {:?}", self.status).to_lowercase())
            }
            AccountCmd::Debit { amount, .. } if amount > self.balance => {
                Err(format!("insufficient funds: {} < {amount}", self.balance))
            }
            AccountCmd::Debit { amount, key } => {
                Ok(Effect::persist(AccountEvent::Debited { amount, key }).then_reply(balance))
            }
            AccountCmd::Credit { amount, key } => {
                Ok(Effect::persist(AccountEvent::Credited { amount, key }).then_reply(balance))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The saga: debit (compensated by a refund), then credit.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TransferData {
    from: String,
    to: String,
    amount: u64,
}

#[derive(Clone, Default)]
struct Transfer {
    /// The child crashes in this saga right after its debit was applied.
    crash_in: Option<String>,
}

/// Sends `command` to `account`, carrying the saga's correlation and causation ids.
async fn send(
    ctx: &StepContext<TransferData>,
    account: &str,
    command: AccountCmd,
) -> Result<(), StepError> {
    ctx.persistence()
        .entity::<Account>(account)
        .ask_with(command, ctx.metadata())
        .await?;
    Ok(())
}

impl SagaDefinition for Transfer {
    type Data = TransferData;
    const NAME: &'static str = "transfer";

    fn steps(&self) -> Vec<SagaStep<TransferData>> {
        let crash_in = self.crash_in.clone();
        vec![
            SagaStep::new("debit", move |ctx: StepContext<TransferData>| {
                let crash = crash_in.as_deref() == Some(ctx.saga_id());
                async move {
                    let key = ctx.idempotency_key();
                    let amount = ctx.data().amount;
                    send(&ctx, &ctx.data().from, AccountCmd::Debit { amount, key }).await?;
                    if crash {
                        // Applied, not yet journaled by the saga: the parent kills us now.
                        println!("CRASH-POINT {} debit applied", ctx.saga_id());
                        std::future::pending::<()>().await;
                    }
                    Ok(())
                }
            })
            .with_compensation(|ctx: StepContext<TransferData>| async move {
                let key = ctx.idempotency_key();
                let amount = ctx.data().amount;
                send(&ctx, &ctx.data().from, AccountCmd::Credit { amount, key }).await
            }),
            SagaStep::new("credit", |ctx: StepContext<TransferData>| async move {
                let key = ctx.idempotency_key();
                let amount = ctx.data().amount;
                send(&ctx, &ctx.data().to, AccountCmd::Credit { amount, key }).await
            }),
        ]
    }
}

fn transfer(from: &str, to: &str, amount: u64) -> TransferData {
    TransferData {
        from: from.into(),
        to: to.into(),
        amount,
    }
}

// ---------------------------------------------------------------------------------------
// The two processes.
// ---------------------------------------------------------------------------------------

const ACCOUNTS: [(&str, u64); 3] = [("alice", 1_000), ("bob", 500), ("carol", 0)];
const KEY: [u8; 32] = [0x5a; 32];

async fn system(
    folder: &std::path::Path,
    transfer: Transfer,
) -> Result<(Persistence, Sagas), Box<dyn std::error::Error>> {
    let config = PersistenceConfig {
        encryption_key: Some(KEY.into()),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(SledManager::new(folder)?, config).await?;
    let sagas = Sagas::open(&persistence)?;
    sagas.register(transfer);
    Ok((persistence, sagas))
}

async fn balance(persistence: &Persistence, id: &str) -> Result<u64, Box<dyn std::error::Error>> {
    match persistence
        .entity::<Account>(id)
        .ask(AccountCmd::Balance)
        .await
    {
        Ok(balance) => Ok(balance),
        Err(CommandError::Rejected(r)) => Err(r.into()),
        Err(CommandError::Failed(e)) => Err(e.into()),
    }
}

fn describe(outcome: &SagaOutcome) -> String {
    match outcome {
        SagaOutcome::Completed => "completed".into(),
        SagaOutcome::Compensated {
            failed_step,
            reason,
        } => format!("compensated ({failed_step} failed: {reason}; debit refunded)"),
        SagaOutcome::Parked {
            dead_letter,
            reason,
            ..
        } => format!("parked on dead letter {dead_letter}: {reason}"),
    }
}

/// The first process: sets up, runs transfers, and is killed in the middle of one.
async fn child(folder: &std::path::Path, run: &str) -> Result<(), Box<dyn std::error::Error>> {
    let crash_id = format!("{run}-bob-to-alice");
    let (persistence, sagas) = system(
        folder,
        Transfer {
            crash_in: Some(crash_id.clone()),
        },
    )
    .await?;
    for (id, initial) in ACCOUNTS {
        let account = persistence.entity::<Account>(id);
        account
            .ask(AccountCmd::Open { initial })
            .await
            .map_err(|e| e.to_string())?;
    }
    persistence
        .entity::<Account>("carol")
        .ask(AccountCmd::Close)
        .await
        .map_err(|e| e.to_string())?;
    println!("accounts: alice, bob, carol (closed)");

    let plan = [
        (format!("{run}-alice-to-bob"), transfer("alice", "bob", 100)),
        (
            format!("{run}-alice-to-carol"),
            transfer("alice", "carol", 50),
        ),
        (
            format!("{run}-alice-to-dave"),
            transfer("alice", "dave", 25),
        ),
        (crash_id, transfer("bob", "alice", 200)),
    ];
    for (id, data) in plan {
        println!(
            "transfer {id}: {} -> {}, {}",
            data.from, data.to, data.amount
        );
        let outcome = sagas.start::<Transfer>(&id, data).await?;
        println!("  {}", describe(&outcome));
    }
    Ok(())
}

/// The second process: restarts on the same folder, resumes, checks.
async fn recover(
    folder: &std::path::Path,
    crashed: &str,
) -> Result<bool, Box<dyn std::error::Error>> {
    let (persistence, sagas) = system(folder, Transfer::default()).await?;
    println!("system restarted on {}", folder.display());
    if let Some(status) = sagas.status::<Transfer>(crashed).await? {
        let shown = match &status {
            SagaStatus::Running {
                completed_steps,
                next_step,
            } => format!(
                "running, {completed_steps} step(s) journaled as done, next step #{next_step} (its debit was applied, but the saga never journaled it)"
            ),
            other => format!("{other:?}"),
        };
        println!("saga {crashed} before resume: {shown}");
    }
    for (id, outcome) in sagas.resume_incomplete().await? {
        println!("resumed saga {id}: {}", describe(&outcome));
    }

    // Bob's journal: one debit for the crashed transfer, carrying the saga's ids.
    let journal = persistence
        .database()
        .store_async::<Account>("accounts", "bob")
        .await?
        .events_with_metadata(0, u64::MAX)?;
    println!("bob's journal:");
    let mut debits_for_crashed = 0;
    for envelope in &journal {
        if let AccountEvent::Debited { key, .. } = &envelope.event
            && key.contains(crashed)
        {
            debits_for_crashed += 1;
        }
        println!(
            "  #{} {:?}  correlation={} causation={}",
            envelope.sequence_number,
            envelope.event,
            envelope.metadata.correlation_id.as_deref().unwrap_or("-"),
            envelope.metadata.causation_id.as_deref().unwrap_or("-"),
        );
    }

    let expected: u64 = ACCOUNTS.iter().map(|(_, initial)| initial).sum();
    let mut total = 0;
    println!("balances:");
    for (id, _) in ACCOUNTS {
        let balance = balance(&persistence, id).await?;
        total += balance;
        println!("  {id:<6} {balance:>6}");
    }
    let letters = sagas.dead_letters().list()?;
    persistence.shutdown().await?;

    let conserved = total == expected;
    let once = debits_for_crashed == 1;
    println!();
    println!("summary");
    println!(
        "  money conserved:              {} (total {total}, expected {expected})",
        if conserved { "yes" } else { "NO" }
    );
    println!(
        "  crashed transfer debited:     {debits_for_crashed} time(s), though its debit step ran twice (before the crash, and on resume with the same idempotency key)"
    );
    println!("  dead letters left:            {}", letters.len());
    Ok(conserved && once && letters.is_empty())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, folder, run] = args.as_slice()
        && flag == "--crash-child"
    {
        return child(std::path::Path::new(folder), run).await;
    }

    let temporary = tempfile::tempdir()?;
    let folder = args
        .get(1)
        .map_or_else(|| temporary.path().to_path_buf(), std::path::PathBuf::from);
    let run = format!(
        "run{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    println!("== saga example: data in {} ==", folder.display());
    println!("-- process 1 (will be killed mid-transfer) --");
    let mut process = Command::new(std::env::current_exe()?)
        .arg("--crash-child")
        .arg(&folder)
        .arg(&run)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = process.stdout.take().ok_or("no child stdout")?;
    let mut crashed = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("  | {line}");
        if let Some(rest) = line.strip_prefix("CRASH-POINT ") {
            crashed = rest.split_whitespace().next().map(str::to_owned);
            process.kill()?; // SIGKILL on Unix: no destructor, no flush
            process.wait()?;
            println!("  ** process 1 killed (SIGKILL) in the middle of the transfer **");
            break;
        }
    }
    let Some(crashed) = crashed else {
        let status = process.wait()?;
        return Err(format!("process 1 ended ({status}) before the crash point").into());
    };

    println!("-- process 2 (restart and resume) --");
    let ok = recover(&folder, &crashed).await?;
    if !ok {
        return Err("the balance check failed".into());
    }
    println!("  all good");
    Ok(())
}

/// The saga's participant, checked with the test kit: a keyed command applies once however
/// often a saga repeats it, before and after a restart, and the keys that make it so are
/// snapshotted with the balance.
#[cfg(test)]
mod tests {
    use super::*;
    use rush::testkit::{BehaviorTestKit, TestKitError};

    fn debit(amount: u64, key: &str) -> AccountCmd {
        AccountCmd::Debit {
            amount,
            key: key.into(),
        }
    }

    async fn open(initial: u64) -> Result<BehaviorTestKit<Account>, TestKitError> {
        let mut kit = BehaviorTestKit::<Account>::new("alice").await?;
        kit.run(AccountCmd::Open { initial }).await?;
        Ok(kit)
    }

    #[tokio::test]
    async fn a_repeated_keyed_command_is_answered_without_a_second_event()
    -> Result<(), TestKitError> {
        let mut kit = open(100).await?;
        let first = kit.run(debit(30, "t-1/debit")).await?;
        assert_eq!(
            first.events(),
            [AccountEvent::Debited {
                amount: 30,
                key: "t-1/debit".into()
            }]
        );
        assert_eq!(first.reply()?, &70);
        let repeat = kit.run(debit(30, "t-1/debit")).await?;
        assert!(repeat.events().is_empty(), "{repeat:?}");
        assert_eq!(repeat.reply()?, &70);
        // Still applied once after a restart: the keys are replayed with the events...
        kit.restart().await?;
        assert!(kit.run(debit(30, "t-1/debit")).await?.events().is_empty());
        // ...and recovered from a snapshot.
        kit.restart_from_snapshot().await?;
        assert!(kit.run(debit(30, "t-1/debit")).await?.events().is_empty());
        assert_eq!(kit.state().await?.balance, 70);
        kit.shutdown().await
    }

    #[tokio::test]
    async fn a_closed_or_short_account_rejects_a_debit_and_opening_twice_changes_nothing()
    -> Result<(), TestKitError> {
        let mut kit = open(10).await?;
        let short = kit.run(debit(11, "t-2/debit")).await?;
        assert_eq!(
            short.rejection().map(String::as_str),
            Some("insufficient funds: 10 < 11")
        );
        let again = kit.run(AccountCmd::Open { initial: 999 }).await?;
        assert!(again.events().is_empty());
        assert_eq!(again.reply()?, &10);
        kit.run(AccountCmd::Close).await?;
        let closed = kit.run(debit(1, "t-3/debit")).await?;
        assert_eq!(
            closed.rejection().map(String::as_str),
            Some("account is closed")
        );
        kit.shutdown().await
    }

    #[tokio::test]
    async fn events_and_state_round_trip_and_a_failed_write_debits_nothing()
    -> Result<(), TestKitError> {
        let mut kit = open(50).await?;
        kit.check_event_round_trip(&AccountEvent::Credited {
            amount: 5,
            key: "t-4/credit".into(),
        })?;
        kit.fail_next_persist();
        let failed = kit.run(debit(20, "t-5/debit")).await?;
        assert!(matches!(failed.reply(), Err(TestKitError::Failed(_))));
        assert_eq!(failed.state().balance, 50);
        // The saga repeats the command: it applies now, once.
        assert_eq!(kit.run(debit(20, "t-5/debit")).await?.reply()?, &30);
        let state = kit.state().await?;
        kit.check_state_round_trip(&state)?;
        kit.shutdown().await
    }
}
