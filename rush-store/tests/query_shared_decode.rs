//! Subscribers of one collection share their reads: ten subscriptions catching up together,
//! or following the log live, decode each event about once between them (issue 13), and
//! each still gets exactly the events it would get alone, whatever its filter and start.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rush_store::{
    Database, DatabaseConfig, Durability, EventFilter, EventMetadata, MemoryManager,
    PersistentActor, StoredEvent,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Decodes of [`Counted`] so far, per test (each test uses its own counter).
static DECODES: [AtomicUsize; 4] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];

/// An event that counts how often it is decoded, in the counter its first field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Counted(usize, u64);

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (counter, value) = <(usize, u64)>::deserialize(deserializer)?;
        DECODES[counter].fetch_add(1, Ordering::SeqCst);
        Ok(Self(counter, value))
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Account {
    total: u64,
}

impl PersistentActor for Account {
    type Event = Counted;
    fn apply(&mut self, event: &Counted) {
        self.total += event.1;
    }
    fn event_tags(event: &Counted) -> Vec<String> {
        if event.1.is_multiple_of(3) {
            vec!["third".into()]
        } else {
            Vec::new()
        }
    }
}

const EVENTS: u64 = 3000;
const SUBSCRIBERS: usize = 10;

fn database(shared_read_pages: usize) -> Database {
    Database::open(
        MemoryManager::default(),
        DatabaseConfig {
            durability: Durability::Periodic,
            encryption_key: Some(rush_store::EncryptionKey::from([9u8; 32])),
            shared_read_pages,
            ..DatabaseConfig::default()
        },
    )
    .unwrap()
}

/// `EVENTS` events over three entities, written before anyone subscribes.
async fn write(db: &Database, counter: usize, from: u64, to: u64) {
    let mut stores = Vec::new();
    for entity in 0..3 {
        stores.push(
            db.store_async::<Account>("accounts", &format!("a{entity}"))
                .await
                .unwrap(),
        );
    }
    for i in from..to {
        let store = &mut stores[(i % 3) as usize];
        store
            .persist_async(&[Counted(counter, i)], &EventMetadata::default())
            .await
            .unwrap();
    }
    db.flush().await.unwrap();
}

/// Catches `SUBSCRIBERS` subscriptions up from offset 1 at once; each must see every event.
async fn catch_up_together(db: &Database) {
    for task in subscribe_from_the_start(db) {
        task.await.unwrap();
    }
}

/// `SUBSCRIBERS` subscriptions from offset 1, each checking it sees offsets 1 to `EVENTS`.
fn subscribe_from_the_start(db: &Database) -> Vec<tokio::task::JoinHandle<()>> {
    let query = db.query::<Account>("accounts").unwrap();
    (0..SUBSCRIBERS)
        .map(|_| {
            let mut live = query.subscribe(1, EventFilter::all());
            tokio::spawn(async move {
                for expected in 1..=EVENTS {
                    let event = live.next().await.unwrap().unwrap();
                    assert_eq!(event.offset, expected);
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_subscribers_catching_up_together_decode_each_event_about_once() {
    let db = database(8);
    write(&db, 0, 0, EVENTS).await;
    let before = DECODES[0].load(Ordering::SeqCst);
    catch_up_together(&db).await;
    let decodes = DECODES[0].load(Ordering::SeqCst) - before;
    // Alone, ten subscribers decode 30,000 times; sharing, about 3,000 (a page a late
    // subscriber reads again costs at most another pass).
    assert!(
        decodes <= 2 * EVENTS as usize,
        "{decodes} decodes for {EVENTS} events and {SUBSCRIBERS} subscribers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sharing_off_every_subscriber_decodes_alone() {
    let db = database(0);
    write(&db, 1, 0, EVENTS).await;
    let before = DECODES[1].load(Ordering::SeqCst);
    catch_up_together(&db).await;
    let decodes = DECODES[1].load(Ordering::SeqCst) - before;
    assert_eq!(decodes, SUBSCRIBERS * EVENTS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_subscribers_share_the_reads_of_new_events() {
    let db = database(8);
    let subscribers = subscribe_from_the_start(&db);
    // Written while they wait at the end of the log, in groups of a hundred.
    let before = DECODES[2].load(Ordering::SeqCst);
    for chunk in 0..EVENTS / 100 {
        let mut store = db.store_async::<Account>("accounts", "live").await.unwrap();
        let events: Vec<Counted> = (chunk * 100..(chunk + 1) * 100)
            .map(|i| Counted(2, i))
            .collect();
        store
            .persist_async(&events, &EventMetadata::default())
            .await
            .unwrap();
        db.flush().await.unwrap();
    }
    for task in subscribers {
        task.await.unwrap();
    }
    let decodes = DECODES[2].load(Ordering::SeqCst) - before;
    assert!(
        decodes <= 3 * EVENTS as usize,
        "{decodes} decodes for {EVENTS} live events and {SUBSCRIBERS} subscribers"
    );
}

/// What one subscription yields until it has `count` events.
async fn collect(
    mut live: rush_store::Subscription<Counted>,
    count: usize,
) -> Vec<StoredEvent<Counted>> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        events.push(live.next().await.unwrap().unwrap());
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_pages_give_each_filter_and_start_exactly_what_it_gets_alone() {
    let shared = database(2);
    let alone = database(0);
    write(&shared, 3, 0, EVENTS).await;
    write(&alone, 3, 0, EVENTS).await;
    let cases = [
        (1, EventFilter::all()),
        (700, EventFilter::all()),
        (1, EventFilter::all().entity("a1")),
        (1500, EventFilter::all().tag("third")),
        (10, EventFilter::all().entity("a2").tag("third")),
    ];
    // The expected events, from subscriptions that share nothing.
    let mut expected = Vec::new();
    for (from, filter) in &cases {
        let query = alone.query::<Account>("accounts").unwrap();
        let all = query.events(*from, filter).unwrap();
        expected.push(all);
    }
    let query = shared.query::<Account>("accounts").unwrap();
    let tasks: Vec<_> = cases
        .iter()
        .zip(&expected)
        .map(|((from, filter), want)| {
            let live = query.subscribe(*from, filter.clone());
            tokio::spawn(collect(live, want.len()))
        })
        .collect();
    for (task, want) in tasks.into_iter().zip(expected) {
        let got = task.await.unwrap();
        let key = |e: &StoredEvent<Counted>| (e.offset, e.entity_id.clone(), e.event.clone());
        assert_eq!(
            got.iter().map(key).collect::<Vec<_>>(),
            want.iter().map(key).collect::<Vec<_>>()
        );
    }
}
