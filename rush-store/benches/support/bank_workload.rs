//! The bank workload shared by `store_bench` and the repository's `perf_report` example
//! (included by `#[path]` from both): the event and state types, the event mix, raw sled
//! configured like `SledManager`, and machine facts.
#![allow(dead_code)]

use rush_store::PersistentActor;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::Path;
use std::time::Duration;

pub const KEY: [u8; 32] = [0x5a; 32];
pub const COLLECTION: &str = "accounts";
pub const ENTITY: &str = "acct-000042";
/// sled settings of `SledConfig::default()`, for the raw baseline.
pub const CACHE_CAPACITY: u64 = 256 * 1024 * 1024;
pub const FLUSH_EVERY_MS: u64 = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BankEvent {
    Deposited {
        iban: String,
        amount_cents: u64,
        currency: String,
        reference: String,
        at_ms: u64,
    },
    Withdrawn {
        iban: String,
        amount_cents: u64,
        currency: String,
        reference: String,
        at_ms: u64,
    },
    FeeCharged {
        amount_cents: u64,
        code: String,
        at_ms: u64,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub balance_cents: i64,
    pub deposits: u64,
    pub withdrawals: u64,
    pub fees: u64,
    pub last_at_ms: u64,
}

impl PersistentActor for Account {
    type Event = BankEvent;

    fn apply(&mut self, event: &BankEvent) {
        match event {
            BankEvent::Deposited {
                amount_cents,
                at_ms,
                ..
            } => {
                self.balance_cents = self.balance_cents.wrapping_add_unsigned(*amount_cents);
                self.deposits += 1;
                self.last_at_ms = *at_ms;
            }
            BankEvent::Withdrawn {
                amount_cents,
                at_ms,
                ..
            } => {
                self.balance_cents = self.balance_cents.wrapping_sub_unsigned(*amount_cents);
                self.withdrawals += 1;
                self.last_at_ms = *at_ms;
            }
            BankEvent::FeeCharged {
                amount_cents,
                at_ms,
                ..
            } => {
                self.balance_cents = self.balance_cents.wrapping_sub_unsigned(*amount_cents);
                self.fees += 1;
                self.last_at_ms = *at_ms;
            }
        }
    }
}

pub fn make_event(i: u64) -> BankEvent {
    let amount_cents = 100 + i.wrapping_mul(7919) % 9_999_900;
    let at_ms = 1_717_000_000_000 + i * 37;
    let iban = format!("DE8937040044{:010}", (i * 104_729) % 10_000_000_000);
    let reference = format!("INV-{:08} payroll 2024-{:02}", i, i % 12 + 1);
    match i % 10 {
        0..=5 => BankEvent::Deposited {
            iban,
            amount_cents,
            currency: "EUR".into(),
            reference,
            at_ms,
        },
        6..=8 => BankEvent::Withdrawn {
            iban,
            amount_cents: amount_cents / 2,
            currency: "EUR".into(),
            reference,
            at_ms,
        },
        _ => BankEvent::FeeCharged {
            amount_cents: 250,
            code: format!("FEE-WIRE-{:04}", i % 10_000),
            at_ms,
        },
    }
}

pub fn bincode_bytes(event: &BankEvent) -> Vec<u8> {
    bincode::serde::encode_to_vec(event, bincode::config::standard()).unwrap()
}

/// `[kind 1][u16 len][collection][u16 len][entity][seq u64]`, big-endian: the shape of
/// rush-store's event keys (keys.rs), so raw sled gets keys of the same length and order.
pub fn event_key(seq: u64) -> Vec<u8> {
    entity_event_key(COLLECTION, ENTITY, seq)
}

/// [`event_key`] of any entity.
pub fn entity_event_key(collection: &str, entity: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 4 + collection.len() + entity.len() + 8);
    key.push(1);
    for id in [collection, entity] {
        key.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
        key.extend_from_slice(id.as_bytes());
    }
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Retries while a just-dropped database in the same folder still holds its lock.
pub fn retry_open<T, E: std::fmt::Debug>(mut open: impl FnMut() -> Result<T, E>) -> T {
    let mut last = None;
    for _ in 0..100 {
        match open() {
            Ok(opened) => return opened,
            Err(e) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    panic!("cannot open the database: {last:?}");
}

/// A raw sled database configured like `SledConfig::default()`, with our own handle on
/// `<dir>/db` for fsync (what `SledManager::flush` does).
pub struct Raw {
    pub db: sled::Db,
    pub db_file: File,
    pub next_seq: u64,
}

impl Raw {
    pub fn open(dir: &Path) -> Self {
        let db = retry_open(|| {
            sled::Config::new()
                .path(dir)
                .cache_capacity(CACHE_CAPACITY)
                .flush_every_ms(Some(FLUSH_EVERY_MS))
                .use_compression(false)
                .open()
        });
        let db_file = File::open(dir.join("db")).unwrap();
        Self {
            db,
            db_file,
            next_seq: 1,
        }
    }

    pub fn durable(&self) {
        self.db.flush().unwrap();
        self.db_file.sync_data().unwrap();
    }

    pub fn insert(&mut self, event: &BankEvent, durable: bool) {
        self.db
            .insert(event_key(self.next_seq), bincode_bytes(event))
            .unwrap();
        self.next_seq += 1;
        if durable {
            self.durable();
        }
    }

    pub fn insert_batch(&mut self, events: &[BankEvent], durable: bool) {
        let mut batch = sled::Batch::default();
        for event in events {
            batch.insert(event_key(self.next_seq), bincode_bytes(event));
            self.next_seq += 1;
        }
        self.db.apply_batch(batch).unwrap();
        if durable {
            self.durable();
        }
    }

    /// `tree.range(..)`, bincode-decode and apply every value.
    pub fn replay(&self) -> (Account, u64) {
        let mut state = Account::default();
        let mut count = 0u64;
        for item in self.db.range::<&[u8], _>(..) {
            let (_, value) = item.unwrap();
            let (event, _): (BankEvent, usize) =
                bincode::serde::decode_from_slice(&value, bincode::config::standard()).unwrap();
            state.apply(&event);
            count += 1;
        }
        (state, count)
    }
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
