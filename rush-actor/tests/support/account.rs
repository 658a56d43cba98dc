//! A bank account behaviour for the actor tests, with a command that panics on purpose.
#![allow(dead_code)]

use rush_actor::{Effect, EventSourced, SnapshotPolicy};
use rush_store::PersistentActor;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Deposited { amount: u64, tag: u64 },
    Withdrawn { amount: u64, tag: u64 },
    Note(Vec<u8>),
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
    pub applied: u64,
    /// Tags of the events in the order applied: lets tests check per-entity order.
    pub last_tag: u64,
    pub from_snapshot_marker: bool,
}

#[derive(Debug)]
pub enum Cmd {
    Deposit { amount: u64, tag: u64 },
    Withdraw { amount: u64, tag: u64 },
    DepositTwice { amount: u64 },
    Balance,
    Note(Vec<u8>),
    Panic,
}

pub static RECOVERIES: AtomicU64 = AtomicU64::new(0);

impl PersistentActor for Account {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount, tag } => {
                self.balance += amount;
                self.last_tag = *tag;
            }
            AccountEvent::Withdrawn { amount, tag } => {
                self.balance -= amount;
                self.last_tag = *tag;
            }
            AccountEvent::Note(_) => {}
        }
        self.applied += 1;
    }
}

impl EventSourced for Account {
    const COLLECTION: &'static str = "accounts";
    type Command = Cmd;
    type Reply = u64;
    type Rejection = String;

    fn decide(&self, command: Cmd) -> Result<Effect<Self>, String> {
        match command {
            Cmd::Deposit { amount, tag } => {
                if amount == 0 {
                    return Err("amount must be positive".into());
                }
                Ok(Effect::persist(AccountEvent::Deposited { amount, tag })
                    .then_reply(|s: &Account| s.balance))
            }
            Cmd::Withdraw { amount, tag } => {
                if amount > self.balance {
                    return Err(format!(
                        "insufficient funds: balance {}, asked {amount}",
                        self.balance
                    ));
                }
                Ok(Effect::persist(AccountEvent::Withdrawn { amount, tag })
                    .then_reply(|s: &Account| s.balance))
            }
            Cmd::DepositTwice { amount } => Ok(Effect::persist_all([
                AccountEvent::Deposited { amount, tag: 0 },
                AccountEvent::Deposited { amount, tag: 0 },
            ])
            .then_reply(|s: &Account| s.balance)),
            Cmd::Balance => Ok(Effect::reply_with(|s: &Account| s.balance)),
            Cmd::Note(bytes) => {
                Ok(Effect::persist(AccountEvent::Note(bytes)).then_reply(|s: &Account| s.applied))
            }
            Cmd::Panic => panic!("injected crash in the command handler"),
        }
    }

    fn on_recovery_completed(&self, _info: &rush_actor::RecoveryInfo) {
        RECOVERIES.fetch_add(1, Ordering::SeqCst);
    }

    fn snapshot_policy() -> Option<SnapshotPolicy> {
        None
    }
}

pub fn deposit(amount: u64, tag: u64) -> Cmd {
    Cmd::Deposit { amount, tag }
}
