//! Schema evolution against golden bytes: `tests/golden/upcast/` holds events written by
//! OLD event types (schema 1: cents as a bare integer; schema 2: cents and a currency),
//! and today's type (schema 3: a `Money` amount and a memo) must read them through its
//! upcasters, in every read path: `events`, `recover` (no snapshot), `EventQuery`,
//! `verify_integrity`. Missing steps and schemas newer than the build are clear errors.
//!
//! With `RUSH_REGENERATE_GOLDEN=1` a missing fixture file is written once (never
//! overwritten): it stands for data already on disk.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/golden.rs"]
mod golden;

use golden::{
    GoldenEvent, GoldenState, check_sealed, dump, golden_dir, load, read_fixture, regenerating,
    render, write_new_fixture,
};
use rush_store::{
    ANY_EVENT_TYPE, Error, EventFilter, EventMetadata, EventQuery, MemoryManager, PersistentActor,
    Store, Upcasters,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const COLLECTION: &str = "accounts";

// ------------------------------------------------------------------ old event types
// Never change these: the fixture holds them as bincode.

/// Schema 1: amounts were cents as a bare integer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AccountEventV1 {
    Deposited(u64),
    Renamed(String),
}

/// The account as the schema-1 build wrote it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct AccountV1 {
    cents: u64,
    name: String,
}

impl PersistentActor for AccountV1 {
    type Event = AccountEventV1;
    fn apply(&mut self, event: &AccountEventV1) {
        match event {
            AccountEventV1::Deposited(cents) => self.cents += cents,
            AccountEventV1::Renamed(name) => self.name.clone_from(name),
        }
    }
}

/// Schema 2: a currency next to the cents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AccountEventV2 {
    Deposited { cents: u64, currency: String },
    Renamed(String),
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct AccountV2 {
    deposits: Vec<(u64, String)>,
    name: String,
}

impl PersistentActor for AccountV2 {
    type Event = AccountEventV2;
    const EVENT_SCHEMA_VERSION: u32 = 2;
    fn apply(&mut self, event: &AccountEventV2) {
        match event {
            AccountEventV2::Deposited { cents, currency } => {
                self.deposits.push((*cents, currency.clone()));
            }
            AccountEventV2::Renamed(name) => self.name.clone_from(name),
        }
    }
}

// ------------------------------------------------------------------ today's type (schema 3)

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Money {
    cents: u64,
    currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AccountEvent {
    Deposited { amount: Money, memo: Option<String> },
    Renamed(String),
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    deposits: Vec<Money>,
    name: String,
}

impl Account {
    fn replay(events: &[AccountEvent]) -> Self {
        let mut account = Self::default();
        for event in events {
            account.apply(event);
        }
        account
    }
}

/// The currency the schema-1 build meant.
const LEGACY_CURRENCY: &str = "EUR";
/// What the catch-all v1 step would give a deposit: seeing it means the step registered
/// for "Deposited" was not preferred.
const WRONG_STEP: &str = "catch-all step used for a deposit";

/// v1 -> v2 for deposits (registered for the type name).
fn deposited_v1_to_v2(old: AccountEventV1) -> AccountEventV2 {
    match old {
        AccountEventV1::Deposited(cents) => AccountEventV2::Deposited {
            cents,
            currency: LEGACY_CURRENCY.into(),
        },
        AccountEventV1::Renamed(name) => AccountEventV2::Renamed(name),
    }
}

/// v1 -> v2 for every other type (ANY_EVENT_TYPE).
fn any_v1_to_v2(old: AccountEventV1) -> AccountEventV2 {
    match old {
        AccountEventV1::Deposited(cents) => AccountEventV2::Deposited {
            cents,
            currency: WRONG_STEP.into(),
        },
        AccountEventV1::Renamed(name) => AccountEventV2::Renamed(name),
    }
}

/// v2 -> v3 for every type (ANY_EVENT_TYPE).
fn any_v2_to_v3(old: AccountEventV2) -> AccountEvent {
    match old {
        AccountEventV2::Deposited { cents, currency } => AccountEvent::Deposited {
            amount: Money { cents, currency },
            memo: None,
        },
        AccountEventV2::Renamed(name) => AccountEvent::Renamed(name),
    }
}

impl PersistentActor for Account {
    type Event = AccountEvent;
    const EVENT_SCHEMA_VERSION: u32 = 3;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount, .. } => self.deposits.push(amount.clone()),
            AccountEvent::Renamed(name) => self.name.clone_from(name),
        }
    }

    fn upcasters(upcasters: &mut Upcasters) {
        upcasters
            .register("Deposited", 1, deposited_v1_to_v2)
            .register(ANY_EVENT_TYPE, 1, any_v1_to_v2)
            .register(ANY_EVENT_TYPE, 2, any_v2_to_v3);
    }
}

/// Today's type with the v1 -> v2 steps forgotten.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct WithoutV1Steps(Account);

impl PersistentActor for WithoutV1Steps {
    type Event = AccountEvent;
    const EVENT_SCHEMA_VERSION: u32 = 3;
    fn apply(&mut self, event: &AccountEvent) {
        self.0.apply(event);
    }
    fn upcasters(upcasters: &mut Upcasters) {
        upcasters.register(ANY_EVENT_TYPE, 2, any_v2_to_v3);
    }
}

/// Today's type with a v1 step for deposits only: renames of schema 1 have none.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct OnlyDepositedV1Step(Account);

impl PersistentActor for OnlyDepositedV1Step {
    type Event = AccountEvent;
    const EVENT_SCHEMA_VERSION: u32 = 3;
    fn apply(&mut self, event: &AccountEvent) {
        self.0.apply(event);
    }
    fn upcasters(upcasters: &mut Upcasters) {
        upcasters
            .register("Deposited", 1, deposited_v1_to_v2)
            .register(ANY_EVENT_TYPE, 2, any_v2_to_v3);
    }
}

/// A newer build (schema 4) whose events happen to have today's shape.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct FromTheFuture(Account);

impl PersistentActor for FromTheFuture {
    type Event = AccountEvent;
    const EVENT_SCHEMA_VERSION: u32 = 4;
    fn apply(&mut self, event: &AccountEvent) {
        self.0.apply(event);
    }
}

// ------------------------------------------------------------------ the fixture

fn fixture_file() -> std::path::PathBuf {
    golden_dir("upcast").join("accounts.records")
}

fn correlation() -> EventMetadata {
    EventMetadata::default()
        .with_correlation_id("upcast-correlation")
        .with_user_id("migrator")
}

/// The fixed script: schema-1 writes of alice and bob, then schema-2 writes of alice and
/// carol. Offsets 1..=8 in this order.
fn generate() -> Vec<(Vec<u8>, Vec<u8>)> {
    let manager = MemoryManager::default();
    let v1 = |entity| Store::<AccountV1>::new(COLLECTION, entity, manager.clone(), None, false);
    let v2 = |entity| Store::<AccountV2>::new(COLLECTION, entity, manager.clone(), None, false);
    let mut alice = v1("alice").unwrap();
    let mut bob = v1("bob").unwrap();
    alice
        .persist_batch(&[
            AccountEventV1::Deposited(1050),
            AccountEventV1::Renamed("Alice".into()),
        ])
        .unwrap();
    bob.persist(&AccountEventV1::Deposited(99)).unwrap();
    alice.persist(&AccountEventV1::Deposited(250)).unwrap();
    bob.persist(&AccountEventV1::Renamed("Bob".into())).unwrap();
    let mut alice = v2("alice").unwrap();
    let mut carol = v2("carol").unwrap();
    alice
        .persist_with_metadata(
            &[
                AccountEventV2::Deposited {
                    cents: 700,
                    currency: "USD".into(),
                },
                AccountEventV2::Renamed("Alice B.".into()),
            ],
            &correlation(),
        )
        .unwrap();
    carol
        .persist(&AccountEventV2::Deposited {
            cents: 5,
            currency: "CHF".into(),
        })
        .unwrap();
    dump(&manager)
}

fn fixture() -> Vec<(Vec<u8>, Vec<u8>)> {
    // Tests run in parallel: one writes the missing file, the others wait to read it.
    static GENERATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = GENERATING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let file = fixture_file();
    if regenerating() && !file.exists() {
        let comments = [
            "rush-store golden records for upcasting: events of schema versions 1 and 2".into(),
            format!(
                "collection {COLLECTION:?}, entities alice, bob, carol; no compression, no encryption"
            ),
            "written by tests/upcasting.rs with RUSH_REGENERATE_GOLDEN=1; never edit or regenerate"
                .into(),
        ];
        write_new_fixture(&file, &render(&comments, &generate()));
    }
    read_fixture(&file)
}

fn deposit(cents: u64, currency: &str) -> AccountEvent {
    AccountEvent::Deposited {
        amount: Money {
            cents,
            currency: currency.into(),
        },
        memo: None,
    }
}

fn renamed(name: &str) -> AccountEvent {
    AccountEvent::Renamed(name.into())
}

/// Every event of the fixture in today's shape: (offset, entity, seq, schema it was
/// written with, event).
fn expected() -> Vec<(u64, &'static str, u64, u32, AccountEvent)> {
    vec![
        (1, "alice", 1, 1, deposit(1050, LEGACY_CURRENCY)),
        (2, "alice", 2, 1, renamed("Alice")),
        (3, "bob", 1, 1, deposit(99, LEGACY_CURRENCY)),
        (4, "alice", 3, 1, deposit(250, LEGACY_CURRENCY)),
        (5, "bob", 2, 1, renamed("Bob")),
        (6, "alice", 4, 2, deposit(700, "USD")),
        (7, "alice", 5, 2, renamed("Alice B.")),
        (8, "carol", 1, 2, deposit(5, "CHF")),
    ]
}

fn events_of(entity: &str) -> Vec<AccountEvent> {
    expected()
        .into_iter()
        .filter(|e| e.1 == entity)
        .map(|e| e.4)
        .collect()
}

fn open<A: PersistentActor>(manager: &MemoryManager, entity: &str) -> Store<A> {
    Store::new(COLLECTION, entity, manager.clone(), None, false).unwrap()
}

fn serialization_message<T: std::fmt::Debug>(result: rush_store::Result<T>) -> String {
    match result {
        Err(Error::Serialization(message)) => message,
        other => panic!("expected a Serialization error, got {other:?}"),
    }
}

// ------------------------------------------------------------------ tests

/// The fixture really holds old schemas: v2 records whose meta says schema 1 or 2.
#[test]
fn the_fixture_holds_events_of_schema_versions_1_and_2() {
    let records = fixture();
    let events: Vec<_> = records.iter().filter(|(key, _)| key[0] == 1).collect();
    assert_eq!(events.len(), 8);
    let mut schemas = Vec::new();
    for (key, value) in &events {
        check_sealed("upcast", false, false, 2, key, value);
        // Plain and uncompressed: [header 20][meta len u32][meta][payload][crc 4].
        let body = &value[20..value.len() - 4];
        let meta_len = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
        let (meta, _): ((String, u32, Vec<String>), usize) =
            bincode::serde::decode_from_slice(&body[4..4 + meta_len], bincode::config::standard())
                .unwrap();
        schemas.push((meta.0, meta.1));
    }
    // Key order (ids are length-prefixed, so "bob" sorts first): bob 1..=2, alice
    // 1..=5, carol 1.
    let expected: Vec<(String, u32)> = [
        ("Deposited", 1),
        ("Renamed", 1),
        ("Deposited", 1),
        ("Renamed", 1),
        ("Deposited", 1),
        ("Deposited", 2),
        ("Renamed", 2),
        ("Deposited", 2),
    ]
    .iter()
    .map(|(t, v)| ((*t).to_owned(), *v))
    .collect();
    assert_eq!(schemas, expected);
    // One collection-log block per persist call, holding one entry per event.
    let entries: usize = records
        .iter()
        .filter(|(key, _)| key[0] == 5)
        .map(|(_, block)| u32::from_be_bytes(block[1..5].try_into().unwrap()) as usize)
        .sum();
    assert_eq!(entries, 8);
}

#[test]
fn todays_type_reads_old_schemas_in_every_read_path() {
    let manager = load(&fixture());
    for entity in ["alice", "bob", "carol"] {
        let store = open::<Account>(&manager, entity);
        let events = events_of(entity);
        assert_eq!(store.events(0, u64::MAX).unwrap(), events, "{entity}");
        // No snapshot: recovery replays every upcast event.
        assert!(store.snapshot_sequence_numbers().unwrap().is_empty());
        assert_eq!(
            store.recover().unwrap(),
            Some(Account::replay(&events)),
            "{entity}"
        );
        assert!(store.verify_integrity().unwrap().is_ok(), "{entity}");
    }
    let alice = open::<Account>(&manager, "alice");
    assert_eq!(
        alice.recover().unwrap().unwrap(),
        Account {
            deposits: vec![
                Money {
                    cents: 1050,
                    currency: "EUR".into()
                },
                Money {
                    cents: 250,
                    currency: "EUR".into()
                },
                Money {
                    cents: 700,
                    currency: "USD".into()
                },
            ],
            name: "Alice B.".into(),
        }
    );
    assert_eq!(
        alice.recover_at(3).unwrap().unwrap().name,
        "Alice",
        "time travel upcasts too"
    );
    // Type and metadata are what the old build recorded; upcasting does not touch them.
    let envelopes = alice.events_with_metadata(0, u64::MAX).unwrap();
    let types: Vec<_> = envelopes.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["Deposited", "Renamed", "Deposited", "Deposited", "Renamed"]
    );
    assert_eq!(envelopes[3].metadata, correlation());
    assert_eq!(envelopes[0].metadata, EventMetadata::default());

    let query = EventQuery::<Account>::new(Arc::new(manager), COLLECTION, None).unwrap();
    let all: Vec<_> = query
        .events(0, &EventFilter::all())
        .unwrap()
        .into_iter()
        .map(|e| (e.offset, e.entity_id, e.sequence_number, e.event))
        .collect();
    let want: Vec<_> = expected()
        .into_iter()
        .map(|(offset, entity, seq, _, event)| (offset, entity.to_owned(), seq, event))
        .collect();
    assert_eq!(all, want);
    let deposits: Vec<_> = query
        .events(0, &EventFilter::all().event_type("Deposited"))
        .unwrap()
        .into_iter()
        .map(|e| (e.offset, e.event))
        .collect();
    assert_eq!(
        deposits,
        vec![
            (1, deposit(1050, "EUR")),
            (3, deposit(99, "EUR")),
            (4, deposit(250, "EUR")),
            (6, deposit(700, "USD")),
            (8, deposit(5, "CHF")),
        ]
    );
}

#[test]
fn a_missing_step_is_an_error_naming_the_type_and_versions() {
    let manager = load(&fixture());
    let alice = open::<WithoutV1Steps>(&manager, "alice");
    let message = serialization_message(alice.events(0, u64::MAX));
    assert!(
        message.contains("\"Deposited\"")
            && message.contains("schema version 1")
            && message.contains("current is 3"),
        "{message}"
    );
    assert!(message.contains("\"alice\""), "names the record: {message}");
    let message = serialization_message(alice.recover());
    assert!(message.contains("\"Deposited\""), "{message}");
    let query =
        EventQuery::<WithoutV1Steps>::new(Arc::new(manager.clone()), COLLECTION, None).unwrap();
    let message = serialization_message(query.events(0, &EventFilter::all()));
    assert!(message.contains("schema version 1"), "{message}");
    // Schema-2 events need only the step it has.
    let carol = open::<WithoutV1Steps>(&manager, "carol");
    assert_eq!(carol.events(0, u64::MAX).unwrap(), events_of("carol"));

    // A step registered for one type does not cover another.
    let bob = open::<OnlyDepositedV1Step>(&manager, "bob");
    assert_eq!(
        bob.events(1, 1).unwrap(),
        vec![deposit(99, LEGACY_CURRENCY)]
    );
    let message = serialization_message(bob.events(0, u64::MAX));
    assert!(
        message.contains("\"Renamed\"") && message.contains("schema version 1"),
        "{message}"
    );
}

#[test]
fn an_event_from_a_newer_schema_than_the_build_is_an_error() {
    let manager = load(&fixture());
    let mut dave = open::<FromTheFuture>(&manager, "dave");
    dave.persist(&deposit(1, "EUR")).unwrap();
    let today = open::<Account>(&manager, "dave");
    let message = serialization_message(today.events(0, u64::MAX));
    assert!(
        message.contains("\"Deposited\"")
            && message.contains("schema version 4")
            && message.contains("newer than this build's 3"),
        "{message}"
    );
    assert!(matches!(today.recover(), Err(Error::Serialization(_))));
    let report = today.verify_integrity().unwrap();
    assert_eq!(report.integrity_errors.len(), 1, "{report:?}");
}

// ------------------------------------------------------------------ format-v1 records

/// The golden events of format v1 with a field added (schema 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum GoldenEventV2 {
    Renamed(String),
    Recorded {
        label: String,
        count: u64,
        weight: f64,
        note: Option<String>,
    },
    Cleared,
}

/// Same state as `GoldenState` (the v1 snapshots decode into it).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct GoldenStateV2(GoldenState);

fn to_v2(event: GoldenEvent, note: &str) -> GoldenEventV2 {
    match event {
        GoldenEvent::Renamed(name) => GoldenEventV2::Renamed(name),
        GoldenEvent::Recorded {
            label,
            count,
            weight,
        } => GoldenEventV2::Recorded {
            label,
            count,
            weight,
            note: Some(note.into()),
        },
        GoldenEvent::Cleared => GoldenEventV2::Cleared,
    }
}

impl PersistentActor for GoldenStateV2 {
    type Event = GoldenEventV2;
    const EVENT_SCHEMA_VERSION: u32 = 2;
    fn apply(&mut self, event: &GoldenEventV2) {
        self.0.apply(&match event.clone() {
            GoldenEventV2::Renamed(name) => GoldenEvent::Renamed(name),
            GoldenEventV2::Recorded {
                label,
                count,
                weight,
                ..
            } => GoldenEvent::Recorded {
                label,
                count,
                weight,
            },
            GoldenEventV2::Cleared => GoldenEvent::Cleared,
        });
    }
    fn upcasters(upcasters: &mut Upcasters) {
        upcasters
            .register("Recorded", 1, |old: GoldenEvent| to_v2(old, "by type"))
            .register(ANY_EVENT_TYPE, 1, |old: GoldenEvent| to_v2(old, "any"));
    }
}

/// Events written before format v2 have no type name: only an ANY_EVENT_TYPE step
/// reaches them.
#[test]
fn format_v1_events_upcast_through_the_catch_all_step() {
    let file = golden_dir("v1").join("plain.records");
    let manager = load(&read_fixture(&file));
    let store = Store::<GoldenStateV2>::new("golden", "plain", manager, None, false).unwrap();
    let expected: Vec<_> = golden::expected_events()
        .into_iter()
        .map(|e| to_v2(e, "any"))
        .collect();
    assert_eq!(store.events(0, u64::MAX).unwrap(), expected);
    // The v1 snapshot at 7, then events 8..=10 upcast.
    assert_eq!(
        store.recover().unwrap(),
        Some(GoldenStateV2(golden::state_after(
            &golden::expected_events()
        )))
    );
}
