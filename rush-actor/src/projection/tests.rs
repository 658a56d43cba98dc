use super::ProjectionTx;
use rush_store::{Database, DatabaseConfig, MemoryManager};

fn database() -> rush_store::Result<Database> {
    Database::open(MemoryManager::default(), DatabaseConfig::default())
}

#[tokio::test]
async fn reads_through_the_transaction_see_its_own_pending_writes() -> rush_store::Result<()> {
    let db = database()?;
    let table = db.table::<u64>("totals")?;
    table.put("a", &1)?;
    let mut tx = ProjectionTx::new(db.clone());
    let seen = tx.get(&table, "a").await?.unwrap_or(0);
    tx.put(&table, "a", seen + 10)?;
    let again = tx.get(&table, "a").await?.unwrap_or(0);
    tx.put(&table, "a", again + 10)?;
    tx.delete(&table, "b")?;
    assert_eq!(tx.get(&table, "a").await?, Some(21));
    assert_eq!(tx.get(&table, "b").await?, None);
    // Nothing reaches the table before the runner commits.
    assert_eq!(table.get("a")?, Some(1));
    assert_eq!(tx.len(), 2);
    table.write(tx.take_ops())?;
    assert!(tx.is_empty());
    assert_eq!(table.get("a")?, Some(21));
    Ok(())
}

#[tokio::test]
async fn a_table_of_another_database_is_refused() -> rush_store::Result<()> {
    let elsewhere = database()?.table::<u64>("totals")?;
    let mut tx = ProjectionTx::new(database()?);
    let refused = tx.put(&elsewhere, "a", 1);
    assert!(
        matches!(&refused, Err(rush_store::Error::InvalidArgument(m)) if m.contains("another database")),
        "{refused:?}"
    );
    assert!(tx.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_row_read_back_as_another_type_is_an_error_not_a_panic() -> rush_store::Result<()> {
    let db = database()?;
    let numbers = db.table::<u64>("t")?;
    let words = db.table::<String>("t")?;
    let mut tx = ProjectionTx::new(db);
    tx.put(&numbers, "k", 7)?;
    assert!(tx.get(&words, "k").await.is_err());
    Ok(())
}

#[tokio::test]
async fn a_row_written_many_times_in_a_page_is_committed_once_with_its_last_value()
-> rush_store::Result<()> {
    let db = database()?;
    let table = db.table::<u64>("totals")?;
    let mut tx = ProjectionTx::new(db.clone());
    for value in 0..1000 {
        tx.put(&table, "a", value)?;
        tx.put(&table, "b", value * 2)?;
    }
    tx.delete(&table, "b")?;
    tx.put(&table, "c", 5)?;
    let ops = tx.take_ops();
    assert_eq!(ops.len(), 3, "one write per row");
    table.write(ops)?;
    assert_eq!(table.get("a")?, Some(999));
    assert_eq!(table.get("b")?, None);
    assert_eq!(table.get("c")?, Some(5));
    Ok(())
}
