//! Damage to sled's own files that the engine-wide damage matrix (`rush_store::conformance`,
//! run in `tests/engine_conformance.rs`) does not reach: a `db` file that is not sled's at
//! all beside a real `conf`, and the blob folder.
//!
//! sled moves any log message over a quarter of a segment to a file in `<dir>/blobs`
//! and never syncs it; `SledManager::flush` does. It looks at that folder at every flush
//! (an index-node rewrite can make a blob out of small values, so the size of our own
//! writes cannot tell), and a failure there is reported: a flush that could not sync a
//! blob did not make the data durable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rush_store::{Backend, Error, SledConfig, SledManager, WriteBatch, WriteOp};

fn put_n(engine: &SledManager, i: u64) {
    put(engine, &i.to_be_bytes(), &[7u8; 100]);
}

fn put(engine: &SledManager, key: &[u8], value: &[u8]) {
    engine
        .commit(&WriteBatch {
            ops: vec![WriteOp::Put {
                key: key.to_vec(),
                value: value.to_vec(),
            }],
            ..WriteBatch::default()
        })
        .unwrap()
        .unwrap();
}

/// A real `conf` beside a `db` that holds no sled segment (garbage, or another file copied
/// over it): sled would open it as a new, empty database and overwrite the file. It is
/// refused as `Corrupted`, naming the file, and the file is left exactly as it was.
#[test]
fn a_garbage_db_beside_a_real_conf_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = SledManager::new(dir.path()).unwrap();
        for i in 0..100 {
            put_n(&engine, i);
        }
        engine.flush().unwrap();
    }
    let db = dir.path().join("db");
    let len = usize::try_from(std::fs::metadata(&db).unwrap().len()).unwrap();
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();

    let opened = SledManager::new(dir.path());
    assert!(
        matches!(&opened, Err(Error::Corrupted { record, .. }) if record.contains("db")),
        "{:?}",
        opened.map(|_| ())
    );
    assert!(
        std::fs::read(&db).unwrap() == garbage,
        "the evidence is untouched"
    );

    // An empty `db` (a database created, nothing written yet) still opens.
    let fresh = tempfile::tempdir().unwrap();
    drop(SledManager::new(fresh.path()).unwrap());
    std::fs::write(fresh.path().join("db"), b"").unwrap();
    drop(SledManager::new(fresh.path()).unwrap());
}

#[test]
fn a_blob_folder_that_cannot_be_read_fails_the_flush_even_after_small_writes() {
    let dir = tempfile::tempdir().unwrap();
    // Without the write-ahead log, every flush is sled's own and lists the blob folder;
    // with the log, only a checkpoint is.
    let without_log = SledConfig {
        write_ahead_log: false,
        ..SledConfig::default()
    };
    let engine = SledManager::with_config(dir.path(), without_log).unwrap();
    put(&engine, b"a", b"small");
    engine.flush().unwrap();

    // Damage: the blob folder replaced by a file, so it cannot be listed.
    let blobs = dir.path().join("blobs");
    if blobs.is_dir() {
        std::fs::remove_dir_all(&blobs).unwrap();
    }
    std::fs::write(&blobs, b"not a folder").unwrap();

    put(&engine, b"b", b"small as well");
    let flushed = engine.flush();
    assert!(
        matches!(&flushed, Err(Error::Io { operation, .. }) if operation.contains("blob")),
        "{flushed:?}"
    );
    // Put back, the next flush succeeds and the data is there.
    std::fs::remove_file(&blobs).unwrap();
    std::fs::create_dir(&blobs).unwrap();
    engine.flush().unwrap();
    assert_eq!(
        engine.get(b"b").unwrap().as_deref(),
        Some(&b"small as well"[..])
    );
}

#[test]
fn a_missing_blob_folder_is_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let engine = SledManager::new(dir.path()).unwrap();
    let blobs = dir.path().join("blobs");
    if blobs.is_dir() {
        std::fs::remove_dir_all(&blobs).unwrap();
    }
    put(&engine, b"a", b"small");
    engine.flush().unwrap();
}
