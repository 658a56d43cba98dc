//! The bank's domain: an account decides and its events change it; an audit log records
//! each run's closing balances.

use rush::actor::{Effect, EventSourced};
use rush::store::PersistentActor;
use serde::{Deserialize, Serialize};
use std::fmt;

// ---------------------------------------------------------------------------------------
// The domain: an account decides, events change it.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AccountEvent {
    Opened { owner: String, initial_cents: u64 },
    Deposited { cents: u64, memo: String },
    Withdrawn { cents: u64, memo: String },
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct BankAccount {
    pub owner: String,
    pub balance_cents: u64,
    pub open: bool,
    pub transactions: u64,
    /// The newest statement lines, as a bank shows them: snapshots carry them too.
    pub statement: std::collections::VecDeque<String>,
}

pub enum AccountCommand {
    Open {
        owner: String,
        initial_cents: u64,
    },
    Deposit {
        cents: u64,
        memo: String,
    },
    Withdraw {
        cents: u64,
        memo: String,
    },
    Balance,
    /// A bug in the handler, on purpose: the supervisor must bring the account back.
    Crash,
}

#[derive(Debug)]
pub enum Refusal {
    AlreadyOpen,
    NotOpen,
    ZeroAmount,
    InsufficientFunds {
        balance_cents: u64,
        requested_cents: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::AlreadyOpen => write!(f, "account already open"),
            Refusal::NotOpen => write!(f, "account is not open"),
            Refusal::ZeroAmount => write!(f, "amount must be positive"),
            Refusal::InsufficientFunds {
                balance_cents,
                requested_cents,
            } => {
                write!(
                    f,
                    "insufficient funds: balance {}, requested {}",
                    money(*balance_cents),
                    money(*requested_cents)
                )
            }
        }
    }
}

impl PersistentActor for BankAccount {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened {
                owner,
                initial_cents,
            } => {
                self.owner.clone_from(owner);
                self.balance_cents = *initial_cents;
                self.open = true;
            }
            AccountEvent::Deposited { cents, memo } => {
                self.balance_cents += cents;
                self.record(format!("+{} {memo}", money(*cents)));
            }
            AccountEvent::Withdrawn { cents, memo } => {
                self.balance_cents -= cents;
                self.record(format!("-{} {memo}", money(*cents)));
            }
        }
    }
}

impl EventSourced for BankAccount {
    const COLLECTION: &'static str = "bank_accounts";
    type Command = AccountCommand;
    type Reply = u64;
    type Rejection = Refusal;

    fn decide(&self, command: AccountCommand) -> Result<Effect<Self>, Refusal> {
        let balance = |s: &BankAccount| s.balance_cents;
        match command {
            AccountCommand::Open {
                owner,
                initial_cents,
            } => {
                if self.open {
                    return Err(Refusal::AlreadyOpen);
                }
                Ok(Effect::persist(AccountEvent::Opened {
                    owner,
                    initial_cents,
                })
                .then_reply(balance))
            }
            AccountCommand::Deposit { cents, memo } => {
                self.check_open(cents)?;
                Ok(Effect::persist(AccountEvent::Deposited { cents, memo }).then_reply(balance))
            }
            AccountCommand::Withdraw { cents, memo } => {
                self.check_open(cents)?;
                if cents > self.balance_cents {
                    return Err(Refusal::InsufficientFunds {
                        balance_cents: self.balance_cents,
                        requested_cents: cents,
                    });
                }
                Ok(Effect::persist(AccountEvent::Withdrawn { cents, memo }).then_reply(balance))
            }
            AccountCommand::Balance => Ok(Effect::reply_with(balance)),
            AccountCommand::Crash => panic!("simulated bug in the command handler"),
        }
    }
}

impl BankAccount {
    fn record(&mut self, line: String) {
        self.transactions += 1;
        self.statement.push_back(line);
        if self.statement.len() > 20 {
            self.statement.pop_front();
        }
    }

    fn check_open(&self, cents: u64) -> Result<(), Refusal> {
        if !self.open {
            return Err(Refusal::NotOpen);
        }
        if cents == 0 {
            return Err(Refusal::ZeroAmount);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// An audit log, itself a persistent actor: each run records its closing balances, so the
// next run can check what it recovered.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct AuditLog {
    pub runs: u64,
    pub last_balances: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunClosed {
    pub balances: Vec<(String, u64)>,
}

impl PersistentActor for AuditLog {
    type Event = RunClosed;
    fn apply(&mut self, event: &RunClosed) {
        self.runs += 1;
        self.last_balances.clone_from(&event.balances);
    }
}

pub enum AuditCommand {
    Read,
    Close(Vec<(String, u64)>),
}

impl EventSourced for AuditLog {
    const COLLECTION: &'static str = "bank_audit";
    type Command = AuditCommand;
    type Reply = AuditLog;
    type Rejection = String;

    fn decide(&self, command: AuditCommand) -> Result<Effect<Self>, String> {
        match command {
            AuditCommand::Read => Ok(Effect::reply_with(AuditLog::clone)),
            AuditCommand::Close(balances) => {
                Ok(Effect::persist(RunClosed { balances }).then_reply(AuditLog::clone))
            }
        }
    }
}

/// Cents as dollars: `$12.34`.
pub fn money(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}
