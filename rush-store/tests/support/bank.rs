//! The bank account of spec 000, used by several tests.
#![allow(dead_code)]

use rush_store::PersistentActor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BankEvent {
    AccountOpened {
        account_id: String,
        initial_balance: f64,
    },
    MoneyDeposited {
        amount: f64,
        balance: f64,
    },
    MoneyWithdrawn {
        amount: f64,
        balance: f64,
    },
    AccountClosed {
        final_balance: f64,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankAccount {
    pub account_id: String,
    pub balance: f64,
    pub is_active: bool,
    pub transaction_count: u64,
}

impl PersistentActor for BankAccount {
    type Event = BankEvent;

    fn apply(&mut self, event: &BankEvent) {
        match event {
            BankEvent::AccountOpened {
                account_id,
                initial_balance,
            } => {
                self.account_id = account_id.clone();
                self.balance = *initial_balance;
                self.is_active = true;
                self.transaction_count = 0;
            }
            BankEvent::MoneyDeposited { balance, .. }
            | BankEvent::MoneyWithdrawn { balance, .. } => {
                self.balance = *balance;
                self.transaction_count += 1;
            }
            BankEvent::AccountClosed { .. } => self.is_active = false,
        }
    }
}

impl BankAccount {
    pub fn deposit(&self, amount: f64) -> Result<BankEvent, String> {
        if !self.is_active {
            return Err("Account is not active".into());
        }
        if amount <= 0.0 {
            return Err("Amount must be positive".into());
        }
        Ok(BankEvent::MoneyDeposited {
            amount,
            balance: self.balance + amount,
        })
    }

    pub fn withdraw(&self, amount: f64) -> Result<BankEvent, String> {
        if !self.is_active {
            return Err("Account is not active".into());
        }
        if amount <= 0.0 {
            return Err("Amount must be positive".into());
        }
        if amount > self.balance {
            return Err("Insufficient funds".into());
        }
        Ok(BankEvent::MoneyWithdrawn {
            amount,
            balance: self.balance - amount,
        })
    }
}

pub fn opened(id: &str, initial_balance: f64) -> BankEvent {
    BankEvent::AccountOpened {
        account_id: id.into(),
        initial_balance,
    }
}

pub fn deposit(amount: f64, balance: f64) -> BankEvent {
    BankEvent::MoneyDeposited { amount, balance }
}

pub const KEY: &[u8; 32] = b"an-example-very-secret-key-32byt";
pub const OTHER_KEY: &[u8; 32] = b"another-example-secret-key-32byt";
