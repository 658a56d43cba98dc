//! Unit tests of `Table`: key order, pages, encrypted rows.

use super::*;
use crate::MemoryManager;

fn table(name: &str, key: Option<&[u8]>, backend: &Arc<dyn Backend>) -> Result<Table<String>> {
    Table::open(Arc::clone(backend), name, key)
}

#[test]
fn rows_are_ordered_by_key_and_tables_do_not_overlap() -> Result<()> {
    let backend: Arc<dyn Backend> = Arc::new(MemoryManager::default());
    let a = table("a", None, &backend)?;
    let ab = table("ab", None, &backend)?;
    a.put("k2", &"two".into())?;
    a.put("k1", &"one".into())?;
    ab.put("k1", &"other".into())?;
    assert_eq!(
        a.rows("")?,
        vec![("k1".into(), "one".into()), ("k2".into(), "two".into())]
    );
    assert_eq!(a.rows("k2")?, vec![("k2".into(), "two".into())]);
    assert_eq!(ab.rows("")?.len(), 1);
    assert_eq!(a.clear()?, 2);
    assert!(a.rows("")?.is_empty());
    assert_eq!(ab.get("k1")?, Some("other".into()));
    Ok(())
}

#[test]
fn pages_walk_the_rows_after_a_key_with_their_write_times() -> Result<()> {
    let backend: Arc<dyn Backend> = Arc::new(MemoryManager::default());
    let t = table("t", None, &backend)?;
    let before = SystemTime::now() - std::time::Duration::from_secs(1);
    for key in ["a/1", "a/2", "a/3", "a/30", "b/1"] {
        t.put(key, &key.to_owned())?;
    }
    let keys =
        |rows: Vec<TableRow<String>>| -> Vec<String> { rows.into_iter().map(|r| r.key).collect() };
    assert_eq!(keys(t.page("a/", None, 2)?), ["a/1", "a/2"]);
    assert_eq!(keys(t.page("a/", Some("a/2"), 2)?), ["a/3", "a/30"]);
    assert_eq!(keys(t.page("a/", Some("a/30"), 2)?), Vec::<String>::new());
    // `after` outside the prefix does not leave it.
    assert_eq!(keys(t.page("b/", Some("a/9"), 9)?), ["b/1"]);
    assert_eq!(keys(t.page("a/", Some("c"), 9)?), Vec::<String>::new());
    let row = t.page("", Some("a/30"), 1)?;
    assert_eq!((row[0].key.as_str(), row[0].value.as_str()), ("b/1", "b/1"));
    assert!(row[0].written_at >= before && row[0].written_at <= SystemTime::now());
    Ok(())
}

#[test]
fn an_encrypted_row_needs_the_key() -> Result<()> {
    let backend: Arc<dyn Backend> = Arc::new(MemoryManager::default());
    table("t", Some(&[1u8; 32]), &backend)?.put("k", &"secret".into())?;
    let wrong = table("t", Some(&[2u8; 32]), &backend)?.get("k");
    assert!(matches!(wrong, Err(Error::Decryption { .. })), "{wrong:?}");
    let raw = backend.scan(&[0x06], &[0x07], 10, false)?;
    assert!(!raw[0].1.windows(6).any(|w| w == b"secret"));
    Ok(())
}
