use super::*;
use crate::query::tests::{Account, Event};
use crate::{MemoryManager, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const PAGE_U64: u64 = PAGE as u64;

/// A reader of `events` events of one entity, all in the log.
fn reader(events: u64) -> Result<PageReader<Account>> {
    let backend = MemoryManager::default();
    let mut store = Store::<Account>::new("accounts", "a", backend.clone(), None, false)?;
    store.persist_batch(&(1..=events).map(Event::Deposited).collect::<Vec<_>>())?;
    Ok(PageReader {
        query: EventQuery::new(Arc::new(backend), "accounts", None)?,
        filter: EventFilter::all(),
    })
}

fn starts<E>(ahead: &ReadAhead<E>) -> Vec<u64> {
    ahead.pages.iter().map(|page| page.start).collect()
}

fn offsets(page: &PageRead<Event>) -> Option<(u64, u64, usize, u64)> {
    let (events, end, backlog) = page.as_ref().ok()?;
    Some((events.first()?.offset, *end, events.len(), *backlog))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_read_ahead_only_as_far_as_the_backlog_reaches() -> Result<()> {
    let reader = reader(3 * PAGE_U64)?;
    let mut ahead = ReadAhead::default();
    ahead.extend(&reader, 1, 0);
    assert!(starts(&ahead).is_empty(), "nothing past the end");
    ahead.extend(&reader, 1, PAGE_U64 + 1);
    assert_eq!(starts(&ahead), [1, 1 + PAGE_U64]);
    ahead.extend(&reader, 1, 10 * PAGE_U64);
    assert_eq!(
        starts(&ahead),
        [1, 1 + PAGE_U64, 1 + 2 * PAGE_U64],
        "topped up to AHEAD pages, each where the one before ends"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_read_ahead_is_the_page_a_read_from_there_gives() -> Result<()> {
    let reader = reader(3 * PAGE_U64 + 10)?;
    let mut ahead = ReadAhead::default();
    ahead.extend(&reader, 1, 3 * PAGE_U64 + 10);
    let read_again = AtomicBool::new(false);
    for from in [1, 1 + PAGE_U64] {
        let page = ahead
            .take(from, async {
                read_again.store(true, Ordering::SeqCst);
                reader.read(from).await
            })
            .await;
        assert_eq!(offsets(&page), offsets(&reader.read(from).await));
        assert_eq!(
            offsets(&page),
            Some((
                from,
                from + PAGE_U64,
                PAGE,
                3 * PAGE_U64 + 10 + 1 - from - PAGE_U64
            ))
        );
    }
    assert!(!read_again.load(Ordering::SeqCst), "taken, not read again");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_ahead_for_another_place_are_dropped() -> Result<()> {
    let reader = reader(3 * PAGE_U64)?;
    let mut ahead = ReadAhead::default();
    ahead.extend(&reader, 1, 3 * PAGE_U64);
    let page = ahead.take(5, reader.read(5)).await;
    assert_eq!(
        offsets(&page),
        Some((5, 5 + PAGE_U64, PAGE, 3 * PAGE_U64 - 4 - PAGE_U64))
    );
    assert!(starts(&ahead).is_empty(), "read for offset 1, dropped");
    // And a page that ends elsewhere than the first read ahead drops them too.
    ahead.extend(&reader, 1, 3 * PAGE_U64);
    ahead.extend(&reader, 7, 3 * PAGE_U64);
    assert_eq!(starts(&ahead)[0], 7);
    Ok(())
}

#[test]
fn outside_a_runtime_nothing_is_read_ahead() -> Result<()> {
    let reader = reader(10)?;
    let mut ahead = ReadAhead::default();
    ahead.extend(&reader, 1, 10);
    assert!(starts(&ahead).is_empty());
    Ok(())
}
