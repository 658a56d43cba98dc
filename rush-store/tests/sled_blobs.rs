//! sled moves any log message over a quarter of a segment to a file in `<dir>/blobs` and
//! never syncs it; `SledManager::flush` does. It looks at that folder at every flush (an
//! index-node rewrite can make a blob out of small values, so the size of our own writes
//! cannot tell), and a failure there is reported: a flush that could not sync a blob did
//! not make the data durable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rush_store::{Backend, Error, SledManager, WriteBatch, WriteOp};

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

#[test]
fn a_blob_folder_that_cannot_be_read_fails_the_flush_even_after_small_writes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = SledManager::new(dir.path()).unwrap();
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
