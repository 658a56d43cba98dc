//! Queries across the entities of a collection: global offsets, filters, metadata, deleted
//! history, on both backends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/backends.rs"]
mod backends;

use backends::each_backend;
use rush_store::{EventFilter, EventMetadata, EventQuery, PersistentActor};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Event {
    Opened { owner: String },
    Deposited(u64),
    Withdrawn(u64),
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Account {
    balance: u64,
}

impl PersistentActor for Account {
    type Event = Event;
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Opened { .. } => {}
            Event::Deposited(n) => self.balance += n,
            Event::Withdrawn(n) => self.balance -= n,
        }
    }
    fn event_tags(event: &Event) -> Vec<String> {
        match event {
            Event::Deposited(n) | Event::Withdrawn(n) if *n >= 100 => vec!["large".into()],
            _ => Vec::new(),
        }
    }
}

#[test]
fn offsets_number_every_event_of_a_collection_in_commit_order() {
    for db in each_backend() {
        let mut a = db.open::<Account>("a", Some(&[3u8; 32]), true);
        let mut b = db.open::<Account>("b", Some(&[3u8; 32]), true);
        a.persist(&Event::Opened {
            owner: "ann".into(),
        })
        .unwrap();
        b.persist(&Event::Opened {
            owner: "bob".into(),
        })
        .unwrap();
        a.persist_batch(&[Event::Deposited(50), Event::Deposited(150)])
            .unwrap();
        b.persist(&Event::Withdrawn(0)).unwrap();
        let query =
            EventQuery::<Account>::new(db.backend.clone(), "accounts", Some(&[3u8; 32])).unwrap();
        let all = query.events(0, &EventFilter::all()).unwrap();
        let seen: Vec<_> = all
            .iter()
            .map(|e| (e.offset, e.entity_id.as_str(), e.sequence_number))
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, "a", 1),
                (2, "b", 1),
                (3, "a", 2),
                (4, "a", 3),
                (5, "b", 2)
            ],
            "{}",
            db.name
        );
        assert_eq!(query.highest_offset().unwrap(), 5);
        assert_eq!(query.events(4, &EventFilter::all()).unwrap().len(), 2);
        assert_eq!(query.entity_ids().unwrap(), vec!["a", "b"]);
        // Another collection has its own log.
        let mut other = rush_store::Store::<Account>::with_backend(
            "other",
            "a",
            db.backend.clone(),
            None,
            false,
        )
        .unwrap();
        other.persist(&Event::Deposited(1)).unwrap();
        assert_eq!(query.highest_offset().unwrap(), 5);
        let other_query = EventQuery::<Account>::new(db.backend.clone(), "other", None).unwrap();
        assert_eq!(
            other_query.events(1, &EventFilter::all()).unwrap()[0].offset,
            1
        );
    }
}

#[test]
fn filters_select_by_entity_type_tag_and_time() {
    for db in each_backend() {
        let mut a = db.open::<Account>("a", None, false);
        let mut b = db.open::<Account>("b", None, false);
        a.persist(&Event::Opened {
            owner: "ann".into(),
        })
        .unwrap();
        a.persist(&Event::Deposited(500)).unwrap();
        b.persist(&Event::Deposited(5)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let middle = SystemTime::now();
        std::thread::sleep(Duration::from_millis(5));
        b.persist(&Event::Withdrawn(200)).unwrap();
        let query = EventQuery::<Account>::new(db.backend.clone(), "accounts", None).unwrap();
        let offsets = |filter: EventFilter| -> Vec<u64> {
            query
                .events(1, &filter)
                .unwrap()
                .iter()
                .map(|e| e.offset)
                .collect()
        };
        assert_eq!(
            offsets(EventFilter::all().entity("b")),
            vec![3, 4],
            "{}",
            db.name
        );
        assert_eq!(
            offsets(EventFilter::all().entity("a").entity("b")),
            vec![1, 2, 3, 4]
        );
        assert_eq!(
            offsets(EventFilter::all().event_type("Deposited")),
            vec![2, 3]
        );
        assert_eq!(
            offsets(
                EventFilter::all()
                    .event_type("Deposited")
                    .event_type("Opened")
            ),
            vec![1, 2, 3]
        );
        assert_eq!(offsets(EventFilter::all().tag("large")), vec![2, 4]);
        assert_eq!(
            offsets(EventFilter::all().tag("large").entity("b")),
            vec![4]
        );
        assert_eq!(offsets(EventFilter::all().since(middle)), vec![4]);
        assert_eq!(offsets(EventFilter::all().until(middle)), vec![1, 2, 3]);
        assert!(offsets(EventFilter::all().tag("nope")).is_empty());
        // A page examines `limit` entries and says where to go on, matching or not.
        let page = query.read(1, &EventFilter::all().entity("b"), 2).unwrap();
        assert!(page.events.is_empty());
        assert_eq!(page.next_offset, 3);
    }
}

#[test]
fn queries_return_type_tags_and_metadata() {
    for db in each_backend() {
        let mut a = db.open::<Account>("a", Some(&[9u8; 32]), true);
        let metadata = EventMetadata::default()
            .with_correlation_id("transfer-7")
            .with_causation_id("cmd-1")
            .with_user_id("ann")
            .with_tenant_id("acme");
        a.persist_with_metadata(&[Event::Deposited(100), Event::Withdrawn(1)], &metadata)
            .unwrap();
        let query =
            EventQuery::<Account>::new(db.backend.clone(), "accounts", Some(&[9u8; 32])).unwrap();
        let events = query.events(1, &EventFilter::all()).unwrap();
        assert_eq!(events.len(), 2, "{}", db.name);
        assert_eq!(events[0].event_type, "Deposited");
        assert_eq!(events[0].tags, vec!["large".to_owned()]);
        assert_eq!(events[1].event_type, "Withdrawn");
        assert!(events[1].tags.is_empty());
        assert!(events.iter().all(|e| e.metadata == metadata));
        // The entity's own journal returns the same metadata.
        let envelopes = a.events_with_metadata(1, 2).unwrap();
        assert_eq!(envelopes[0].metadata, metadata);
        assert_eq!(envelopes[0].event_type, "Deposited");
        // A query without the key gets a clear error, never plaintext.
        let keyless = EventQuery::<Account>::new(db.backend.clone(), "accounts", None).unwrap();
        assert!(matches!(
            keyless.events(1, &EventFilter::all()),
            Err(rush_store::Error::Decryption { .. })
        ));
    }
}

#[test]
fn events_deleted_on_purpose_are_skipped() {
    for db in each_backend() {
        let mut a = db.open::<Account>("a", None, false);
        let mut b = db.open::<Account>("b", None, false);
        a.persist_batch(&[Event::Deposited(1), Event::Deposited(2)])
            .unwrap();
        b.persist(&Event::Deposited(3)).unwrap();
        a.snapshot(&Account { balance: 3 }).unwrap();
        a.delete_events_to(2).unwrap();
        a.persist(&Event::Deposited(4)).unwrap();
        let query = EventQuery::<Account>::new(db.backend.clone(), "accounts", None).unwrap();
        let left: Vec<_> = query
            .events(1, &EventFilter::all())
            .unwrap()
            .into_iter()
            .map(|e| (e.offset, e.event))
            .collect();
        assert_eq!(
            left,
            vec![(3, Event::Deposited(3)), (4, Event::Deposited(4))],
            "{}",
            db.name
        );
    }
}

#[test]
fn offsets_continue_after_a_reopen() {
    for mut db in each_backend() {
        db.open::<Account>("a", None, false)
            .persist(&Event::Deposited(1))
            .unwrap();
        db.reopen();
        db.open::<Account>("b", None, false)
            .persist(&Event::Deposited(2))
            .unwrap();
        let query = EventQuery::<Account>::new(db.backend.clone(), "accounts", None).unwrap();
        let offsets: Vec<_> = query
            .events(1, &EventFilter::all())
            .unwrap()
            .iter()
            .map(|e| (e.offset, e.entity_id.clone()))
            .collect();
        assert_eq!(
            offsets,
            vec![(1, "a".to_owned()), (2, "b".to_owned())],
            "{}",
            db.name
        );
    }
}
