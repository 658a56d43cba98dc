use super::ProjectionTx;
use rush_store::{Backend, MemoryManager, Table};
use std::sync::Arc;

fn backend() -> Arc<dyn Backend> {
    Arc::new(MemoryManager::default())
}

#[test]
fn reads_through_the_transaction_see_its_own_pending_writes() -> rush_store::Result<()> {
    let db = backend();
    let table = Table::<u64>::open(Arc::clone(&db), "totals", None)?;
    table.put("a", &1)?;
    let mut tx = ProjectionTx::new(Arc::clone(&db));
    let seen = tx.get(&table, "a")?.unwrap_or(0);
    tx.put(&table, "a", seen + 10)?;
    let again = tx.get(&table, "a")?.unwrap_or(0);
    tx.put(&table, "a", again + 10)?;
    tx.delete(&table, "b")?;
    assert_eq!(tx.get(&table, "a")?, Some(21));
    assert_eq!(tx.get(&table, "b")?, None);
    // Nothing reaches the table before the runner commits.
    assert_eq!(table.get("a")?, Some(1));
    assert_eq!(tx.len(), 3);
    table.write(tx.take_ops())?;
    assert!(tx.is_empty());
    assert_eq!(table.get("a")?, Some(21));
    Ok(())
}

#[test]
fn a_table_of_another_database_is_refused() -> rush_store::Result<()> {
    let elsewhere = Table::<u64>::open(backend(), "totals", None)?;
    let mut tx = ProjectionTx::new(backend());
    let refused = tx.put(&elsewhere, "a", 1);
    assert!(
        matches!(&refused, Err(rush_store::Error::InvalidArgument(m)) if m.contains("another backend")),
        "{refused:?}"
    );
    assert!(tx.is_empty());
    Ok(())
}

#[test]
fn a_row_read_back_as_another_type_is_an_error_not_a_panic() -> rush_store::Result<()> {
    let db = backend();
    let numbers = Table::<u64>::open(Arc::clone(&db), "t", None)?;
    let words = Table::<String>::open(Arc::clone(&db), "t", None)?;
    let mut tx = ProjectionTx::new(db);
    tx.put(&numbers, "k", 7)?;
    assert!(tx.get(&words, "k").is_err());
    Ok(())
}
