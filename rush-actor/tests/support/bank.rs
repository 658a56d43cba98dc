//! Bank accounts that apply each keyed command once (idempotency keys in their state),
//! and a transfer saga over them: debit (compensated by a refund), then credit.
#![allow(dead_code)]

use rush_actor::{
    CommandError, Effect, EventSourced, IdempotencyKeys, Persistence, RetryPolicy, SagaDefinition,
    SagaStep, StepContext, StepError,
};
use rush_store::{Backend, EventEnvelope, PersistentActor, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BankEvent {
    Opened { initial: u64 },
    Debited { amount: u64, key: String },
    Credited { amount: u64, key: String },
    Closed,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct BankAccount {
    pub balance: u64,
    pub open: bool,
    pub keys: IdempotencyKeys,
}

#[derive(Debug)]
pub enum BankCmd {
    Open { initial: u64 },
    Debit { amount: u64, key: String },
    Credit { amount: u64, key: String },
    Close,
    Balance,
}

impl PersistentActor for BankAccount {
    type Event = BankEvent;

    fn apply(&mut self, event: &BankEvent) {
        match event {
            BankEvent::Opened { initial } => {
                self.open = true;
                self.balance = *initial;
            }
            BankEvent::Debited { amount, key } => {
                self.balance -= amount;
                self.keys.insert(key.as_str());
            }
            BankEvent::Credited { amount, key } => {
                self.balance += amount;
                self.keys.insert(key.as_str());
            }
            BankEvent::Closed => self.open = false,
        }
    }
}

impl EventSourced for BankAccount {
    const COLLECTION: &'static str = "bank-accounts";
    type Command = BankCmd;
    type Reply = u64;
    type Rejection = String;

    fn decide(&self, command: BankCmd) -> Result<Effect<Self>, String> {
        let balance = |s: &BankAccount| s.balance;
        match command {
            BankCmd::Open { .. } if self.open => Ok(Effect::reply_with(balance)),
            BankCmd::Open { initial } => {
                Ok(Effect::persist(BankEvent::Opened { initial }).then_reply(balance))
            }
            BankCmd::Debit { key, .. } | BankCmd::Credit { key, .. }
                if self.keys.contains(&key) =>
            {
                // Applied before: answer the repeat, change nothing.
                Ok(Effect::reply_with(balance))
            }
            _ if !self.open && !matches!(command, BankCmd::Balance) => {
                Err("account closed or missing".into())
            }
            BankCmd::Debit { amount, .. } if amount > self.balance => Err(format!(
                "insufficient funds: balance {}, asked {amount}",
                self.balance
            )),
            BankCmd::Debit { amount, key } => {
                Ok(Effect::persist(BankEvent::Debited { amount, key }).then_reply(balance))
            }
            BankCmd::Credit { amount, key } => {
                Ok(Effect::persist(BankEvent::Credited { amount, key }).then_reply(balance))
            }
            BankCmd::Close => Ok(Effect::persist(BankEvent::Closed).then_reply(balance)),
            BankCmd::Balance => Ok(Effect::reply_with(balance)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferData {
    pub from: String,
    pub to: String,
    pub amount: u64,
}

/// Called after a step's command was applied (before the saga journals it); returns how
/// long the step then waits (a crash test widens the window with it).
pub type AfterApplied = Arc<dyn Fn(&StepContext<TransferData>) -> Duration + Send + Sync>;

/// Debit `from`, then credit `to`; a refused credit refunds the debit.
#[derive(Clone, Default)]
pub struct Transfer {
    pub after_applied: Option<AfterApplied>,
}

async fn command(
    ctx: &StepContext<TransferData>,
    account: &str,
    command: BankCmd,
    after_applied: Option<&AfterApplied>,
) -> Result<(), StepError> {
    ctx.persistence()
        .entity::<BankAccount>(account)
        .ask_with(command, ctx.metadata())
        .await
        .map_err(StepError::from)?;
    if let Some(hook) = after_applied {
        let pause = hook(ctx);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}

impl SagaDefinition for Transfer {
    type Data = TransferData;
    const NAME: &'static str = "transfer";

    fn steps(&self) -> Vec<SagaStep<TransferData>> {
        let (h1, h2, h3) = (
            self.after_applied.clone(),
            self.after_applied.clone(),
            self.after_applied.clone(),
        );
        vec![
            SagaStep::new("debit", move |ctx: StepContext<TransferData>| {
                let hook = h1.clone();
                async move {
                    let cmd = BankCmd::Debit {
                        amount: ctx.data().amount,
                        key: ctx.idempotency_key(),
                    };
                    command(&ctx, &ctx.data().from, cmd, hook.as_ref()).await
                }
            })
            .with_compensation(move |ctx: StepContext<TransferData>| {
                let hook = h2.clone();
                async move {
                    let cmd = BankCmd::Credit {
                        amount: ctx.data().amount,
                        key: ctx.idempotency_key(),
                    };
                    command(&ctx, &ctx.data().from, cmd, hook.as_ref()).await
                }
            }),
            SagaStep::new("credit", move |ctx: StepContext<TransferData>| {
                let hook = h3.clone();
                async move {
                    let cmd = BankCmd::Credit {
                        amount: ctx.data().amount,
                        key: ctx.idempotency_key(),
                    };
                    command(&ctx, &ctx.data().to, cmd, hook.as_ref()).await
                }
            }),
        ]
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        }
    }
}

pub fn transfer(from: &str, to: &str, amount: u64) -> TransferData {
    TransferData {
        from: from.into(),
        to: to.into(),
        amount,
    }
}

pub async fn open(persistence: &Persistence, id: &str, initial: u64) {
    persistence
        .entity::<BankAccount>(id)
        .ask(BankCmd::Open { initial })
        .await
        .unwrap();
}

pub async fn balance(persistence: &Persistence, id: &str) -> u64 {
    match persistence
        .entity::<BankAccount>(id)
        .ask(BankCmd::Balance)
        .await
    {
        Ok(balance) => balance,
        Err(CommandError::Rejected(_)) => 0,
        Err(e) => panic!("balance of {id}: {e}"),
    }
}

/// The journal of one account, with metadata.
pub fn account_events(
    backend: &Arc<dyn Backend>,
    key: Option<&[u8]>,
    id: &str,
) -> Vec<EventEnvelope<BankEvent>> {
    Store::<BankAccount>::with_backend(BankAccount::COLLECTION, id, backend.clone(), key, true)
        .unwrap()
        .events_with_metadata(0, u64::MAX)
        .unwrap()
}
