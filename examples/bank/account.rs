//! The bank's domain: an account decides and its events change it; an audit log records
//! each run's closing balances.

use rush::actor::{Effect, EventSourced};
use rush::store::PersistentActor;
use serde::{Deserialize, Serialize};
use std::fmt;

// ---------------------------------------------------------------------------------------
// The domain: an account decides, events change it.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Opened { owner: String, initial_cents: u64 },
    Deposited { cents: u64, memo: String },
    Withdrawn { cents: u64, memo: String },
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
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

/// The account's behaviour, checked with the test kit: each command's events, reply and
/// state; restarts from events and from a snapshot; round trips; a crash and a failing
/// journal, and what the supervisor does about each.
#[cfg(test)]
mod tests {
    use super::*;
    use rush::testkit::{BehaviorTestKit, TestKitError};

    fn deposit(cents: u64) -> AccountCommand {
        AccountCommand::Deposit {
            cents,
            memo: format!("deposit {cents}"),
        }
    }

    fn withdraw(cents: u64) -> AccountCommand {
        AccountCommand::Withdraw {
            cents,
            memo: format!("withdraw {cents}"),
        }
    }

    async fn opened(id: &str, cents: u64) -> Result<BehaviorTestKit<BankAccount>, TestKitError> {
        let mut kit = BehaviorTestKit::<BankAccount>::new(id).await?;
        let opened = kit
            .run(AccountCommand::Open {
                owner: "Ada".into(),
                initial_cents: cents,
            })
            .await?;
        assert_eq!(
            opened.events(),
            [AccountEvent::Opened {
                owner: "Ada".into(),
                initial_cents: cents
            }]
        );
        Ok(kit)
    }

    #[tokio::test]
    async fn deposits_and_withdrawals_persist_one_event_each_and_reply_the_balance()
    -> Result<(), TestKitError> {
        let mut kit = opened("acc-1", 1_000).await?;
        let result = kit.run(deposit(250)).await?;
        assert_eq!(
            result.events(),
            [AccountEvent::Deposited {
                cents: 250,
                memo: "deposit 250".into()
            }]
        );
        assert_eq!(result.reply()?, &1_250);
        assert_eq!(
            result.state().statement.back().map(String::as_str),
            Some("+$2.50 deposit 250")
        );
        let result = kit.run(withdraw(1_250)).await?;
        assert_eq!(result.reply()?, &0);
        assert_eq!(result.state().transactions, 2);
        let result = kit.run(AccountCommand::Balance).await?;
        assert!(result.events().is_empty());
        assert_eq!(result.reply()?, &0);
        kit.shutdown().await
    }

    #[tokio::test]
    async fn refusals_persist_nothing_and_leave_the_state_alone() -> Result<(), TestKitError> {
        let mut kit = BehaviorTestKit::<BankAccount>::new("acc-2").await?;
        let result = kit.run(deposit(5)).await?;
        assert!(matches!(result.rejection(), Some(Refusal::NotOpen)));
        let mut kit = opened("acc-3", 100).await?;
        for (command, refusal) in [
            (deposit(0), "amount must be positive"),
            (
                withdraw(101),
                "insufficient funds: balance $1.00, requested $1.01",
            ),
            (
                AccountCommand::Open {
                    owner: "Bob".into(),
                    initial_cents: 1,
                },
                "account already open",
            ),
        ] {
            let result = kit.run(command).await?;
            assert!(result.events().is_empty());
            assert_eq!(
                result.rejection().map(ToString::to_string).as_deref(),
                Some(refusal)
            );
            assert_eq!(result.state().balance_cents, 100);
        }
        kit.shutdown().await
    }

    #[tokio::test]
    async fn the_state_recovered_from_events_or_a_snapshot_equals_the_live_one()
    -> Result<(), TestKitError> {
        let mut kit = opened("acc-4", 0).await?;
        // More than the statement keeps: recovery must drop the same old lines.
        for cents in 1..=30 {
            kit.run(deposit(cents)).await?;
        }
        kit.run(withdraw(65)).await?;
        let recovered = kit.restart().await?;
        assert_eq!(recovered.balance_cents, 400);
        assert_eq!(recovered.statement.len(), 20);
        kit.restart_from_snapshot().await?;
        assert_eq!(kit.events().await?.len(), 32);
        kit.shutdown().await
    }

    #[tokio::test]
    async fn events_and_states_round_trip_through_the_encrypted_journal() -> Result<(), TestKitError>
    {
        let config = rush::PersistenceConfig {
            encryption_key: Some([7u8; 32].into()),
            ..Default::default()
        };
        let mut kit = BehaviorTestKit::<BankAccount>::with_config("acc-5", config).await?;
        kit.run(AccountCommand::Open {
            owner: "Zoë 🏦".into(),
            initial_cents: u64::MAX / 2,
        })
        .await?;
        for event in [
            AccountEvent::Opened {
                owner: String::new(),
                initial_cents: 0,
            },
            AccountEvent::Deposited {
                cents: u64::MAX,
                memo: "é\0\n".repeat(100),
            },
            AccountEvent::Withdrawn {
                cents: 1,
                memo: String::new(),
            },
        ] {
            kit.check_event_round_trip(&event)?;
        }
        let state = kit.state().await?;
        kit.check_state_round_trip(&state)?;
        kit.check_round_trip(&(String::from("memo"), 42u64))?;
        kit.shutdown().await
    }

    #[tokio::test]
    async fn a_crash_restarts_the_actor_with_the_durable_balance() -> Result<(), TestKitError> {
        let mut kit = opened("acc-6", 500).await?;
        kit.run(deposit(20)).await?;
        let crashed = kit.run(AccountCommand::Crash).await?;
        assert!(matches!(crashed.reply(), Err(TestKitError::Failed(_))));
        assert!(crashed.events().is_empty());
        assert_eq!(crashed.state().balance_cents, 520);
        assert_eq!(kit.metrics().map(|m| m.restarts), Some(1));
        kit.shutdown().await
    }

    #[tokio::test]
    async fn a_failed_journal_write_fails_the_command_and_loses_nothing_acknowledged()
    -> Result<(), TestKitError> {
        let mut kit = opened("acc-7", 500).await?;
        kit.fail_next_persist();
        let failed = kit.run(withdraw(100)).await?;
        assert!(
            matches!(failed.reply(), Err(TestKitError::Failed(_))),
            "{failed:?}"
        );
        assert_eq!(kit.failed_writes(), 1);
        assert!(failed.events().is_empty());
        // The supervisor restarted the actor from the journal: the withdrawal never happened.
        assert_eq!(failed.state().balance_cents, 500);
        assert_eq!(kit.metrics().map(|m| m.restarts), Some(1));
        assert_eq!(kit.run(withdraw(100)).await?.reply()?, &400);
        kit.shutdown().await
    }
}
