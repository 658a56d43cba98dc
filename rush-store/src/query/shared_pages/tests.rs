#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::metadata::EventMetadata;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

fn event(offset: u64, entity: &str) -> StoredEvent<u64> {
    StoredEvent {
        offset,
        entity_id: entity.into(),
        sequence_number: offset,
        timestamp: SystemTime::UNIX_EPOCH,
        event_type: "n".into(),
        tags: Vec::new(),
        metadata: EventMetadata::default(),
        event: offset,
    }
}

fn page(start: u64, end: u64) -> Page<u64> {
    Page {
        start,
        end,
        backlog: 0,
        events: (start..end).map(|o| event(o, "a")).collect(),
    }
}

#[tokio::test]
async fn readers_at_the_same_start_share_one_read() {
    let pages = Arc::new(SharedPages::<u64>::new(4));
    let reads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let pages = Arc::clone(&pages);
            let reads = Arc::clone(&reads);
            tokio::spawn(async move {
                pages
                    .page(1, true, || async move {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok(page(1, 11))
                    })
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().events.len(), 10);
    }
    assert_eq!(reads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_reader_inside_a_page_takes_its_tail_and_a_reader_past_it_reads_anew() {
    let pages = SharedPages::<u64>::new(4);
    pages
        .page(1, true, || async { Ok(page(1, 11)) })
        .await
        .unwrap()
        .unwrap();
    let inside = pages
        .page(5, false, || async {
            panic!("no read for a covered offset")
        })
        .await
        .unwrap()
        .unwrap();
    let tail = inside.tail(5, &EventFilter::all());
    assert_eq!(tail.first().map(|e| e.offset), Some(5));
    assert_eq!(tail.len(), 6);
    // Past the end: nothing to join without reading.
    assert!(
        pages
            .page(11, false, || async { Ok(page(11, 12)) })
            .await
            .is_none()
    );
    let next = pages
        .page(11, true, || async { Ok(page(11, 13)) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.events.len(), 2);
}

#[tokio::test]
async fn a_page_read_at_the_end_of_the_log_is_read_again_once_more_is_there() {
    let pages = SharedPages::<u64>::new(4);
    // Caught up: nothing was durable past offset 7.
    let empty = pages
        .page(7, true, || async { Ok(page(7, 7)) })
        .await
        .unwrap()
        .unwrap();
    assert!(empty.events.is_empty());
    let later = pages
        .page(7, true, || async { Ok(page(7, 9)) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.events.len(), 2);
}

#[tokio::test]
async fn a_failed_read_reaches_every_waiter_and_is_read_again_next_time() {
    let pages = SharedPages::<u64>::new(4);
    let failed = pages
        .page(1, true, || async {
            Err(crate::Error::storage("read", "the disk said no"))
        })
        .await
        .unwrap();
    assert!(failed.is_err());
    let again = pages
        .page(1, true, || async { Ok(page(1, 3)) })
        .await
        .unwrap();
    assert_eq!(again.unwrap().events.len(), 2);
}

/// Reads the pages of ten offsets starting at each of `starts`, in order.
async fn read_pages(pages: &SharedPages<u64>, starts: &[u64]) {
    for &start in starts {
        pages
            .page(start, true, || async move { Ok(page(start, start + 10)) })
            .await
            .unwrap()
            .unwrap();
    }
}

/// Whether a page holding `offset` is kept (found without a read).
async fn kept(pages: &SharedPages<u64>, offset: u64) -> bool {
    pages
        .page(
            offset,
            false,
            || async move { Ok(page(offset, offset + 1)) },
        )
        .await
        .is_some()
}

#[tokio::test]
async fn at_most_capacity_pages_are_kept_the_oldest_read_first_out() {
    let pages = SharedPages::<u64>::new(2);
    read_pages(&pages, &[1, 11, 21]).await;
    assert!(!kept(&pages, 5).await);
    assert!(kept(&pages, 15).await);
}

/// Pages left over from an earlier catch-up near the log's end go before the pages of
/// a new catch-up from the start. With the lowest start evicted first they stayed, the
/// new catch-up kept one page, and ten subscribers that drifted apart by more than
/// that read every page each (read_side_bench: 10M decodes for 10 x 1M events).
#[tokio::test]
async fn pages_of_an_earlier_catch_up_go_before_the_pages_of_a_new_one() {
    let pages = SharedPages::<u64>::new(3);
    read_pages(&pages, &[1001, 1011, 1021]).await;
    read_pages(&pages, &[1, 11]).await;
    assert!(
        kept(&pages, 5).await,
        "the new catch-up's first page is still there for those behind"
    );
    assert!(
        !kept(&pages, 1005).await,
        "the earlier catch-up's oldest page went first"
    );
}

#[test]
fn a_tail_keeps_only_what_the_filter_lets_through() {
    let mut read = page(1, 5);
    read.events[1].entity_id = "b".into();
    let only_b = read.tail(1, &EventFilter::all().entity("b"));
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].offset, 2);
}

#[test]
fn the_registry_hands_out_one_set_per_collection_and_actor_while_it_is_held() {
    let registry = Registry::new(4);
    let a = registry.pages::<u64>("c", TypeId::of::<u8>()).unwrap();
    let again = registry.pages::<u64>("c", TypeId::of::<u8>()).unwrap();
    assert!(Arc::ptr_eq(&a, &again));
    let other = registry.pages::<u64>("d", TypeId::of::<u8>()).unwrap();
    assert!(!Arc::ptr_eq(&a, &other));
    drop((a, again));
    let fresh = registry.pages::<u64>("c", TypeId::of::<u8>()).unwrap();
    assert_eq!(Arc::strong_count(&fresh), 1);
    assert!(
        Registry::new(0)
            .pages::<u64>("c", TypeId::of::<u8>())
            .is_none()
    );
}
