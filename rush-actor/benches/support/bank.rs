//! The benchmarks' bank account: a persistent actor taking deposits, with events the size
//! of a real payment record.
#![allow(dead_code)]

use rush_actor::{Effect, EventSourced};
use rush_store::PersistentActor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BankEvent {
    Deposited {
        account: String,
        amount_cents: u64,
        currency: String,
        reference: String,
        tag: u64,
    },
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
    pub deposits: u64,
}

#[derive(Debug)]
pub enum Cmd {
    Deposit {
        account: String,
        amount_cents: u64,
        tag: u64,
    },
    Balance,
}

pub fn deposited(account: &str, amount_cents: u64, tag: u64) -> BankEvent {
    BankEvent::Deposited {
        account: account.to_owned(),
        amount_cents,
        currency: "EUR".to_owned(),
        reference: format!("SEPA credit transfer ref {tag:012} inv-4711"),
        tag,
    }
}

impl PersistentActor for Account {
    type Event = BankEvent;

    fn apply(&mut self, event: &BankEvent) {
        match event {
            BankEvent::Deposited { amount_cents, .. } => {
                self.balance += amount_cents;
                self.deposits += 1;
            }
        }
    }
}

impl EventSourced for Account {
    const COLLECTION: &'static str = "accounts";
    type Command = Cmd;
    type Reply = u64;
    type Rejection = String;

    fn decide(&self, command: Cmd) -> Result<Effect<Self>, String> {
        match command {
            Cmd::Deposit {
                account,
                amount_cents,
                tag,
            } => {
                if amount_cents == 0 {
                    return Err("amount must be positive".into());
                }
                Ok(Effect::persist(deposited(&account, amount_cents, tag))
                    .then_reply(|s: &Account| s.balance))
            }
            Cmd::Balance => Ok(Effect::reply_with(|s: &Account| s.balance)),
        }
    }
}

pub fn account_id(i: usize) -> String {
    format!("acct-{i:06}")
}
