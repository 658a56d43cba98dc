//! Golden files of the write-ahead log, format 1 (FORMAT.md, "The write-ahead log"): a
//! `rush-wal` holding three commits that sled's files never received, and the `rush-mark`
//! that counted them, kept in `tests/golden/wal-v1/`. Every later build must replay them
//! into an empty sled folder, with the log or without it.
//!
//! With `RUSH_REGENERATE_GOLDEN=1` the test first writes the fixtures if they do not exist
//! yet (it never overwrites one), then reads them like any other run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rush_store::{
    Backend, LogAppend, SledConfig, SledManager, WriteBatch, WriteOp, engine_kit::confirm_now,
};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/wal-v1")
}

fn logged() -> SledConfig {
    SledConfig {
        write_ahead_log: true,
        // Nothing reaches sled's files before the fixtures are copied.
        flush_every_ms: 3_600_000,
        ..SledConfig::default()
    }
}

/// The three commits: puts under `golden/`, a delete of an earlier put, and one log
/// entry each.
fn batches() -> Vec<WriteBatch> {
    (1u8..=3)
        .map(|i| WriteBatch {
            ops: std::iter::once(WriteOp::Put {
                key: format!("golden/{i}").into_bytes(),
                value: vec![i; 40],
            })
            .chain((i == 3).then(|| WriteOp::Delete {
                key: b"golden/1".to_vec(),
            }))
            .collect(),
            appends: vec![LogAppend {
                log: b"golden-log/".to_vec(),
                value: vec![i],
            }],
            ..WriteBatch::default()
        })
        .collect()
}

/// Writes the fixtures: the log as it stands after the three commits, cut after its last
/// record (the zeros the file grows by are not part of the format), and the mark.
fn regenerate(dir: &Path) {
    let work = tempfile::tempdir().unwrap();
    let db = SledManager::with_config(work.path(), logged()).unwrap();
    for batch in batches() {
        let (committed, step) = db.commit_durable(&batch).unwrap();
        committed.unwrap();
        confirm_now(step).unwrap();
    }
    let wal = std::fs::read(work.path().join("rush-wal")).unwrap();
    let mark = std::fs::read(work.path().join("rush-mark")).unwrap();
    drop(db);
    // Header and three one-sector records.
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("rush-wal"), &wal[..4 * 512]).unwrap();
    std::fs::write(dir.join("rush-mark"), mark).unwrap();
}

fn fixtures_in(folder: &Path) {
    let dir = golden_dir();
    if std::env::var("RUSH_REGENERATE_GOLDEN").as_deref() == Ok("1")
        && !dir.join("rush-wal").exists()
    {
        regenerate(&dir);
    }
    for file in ["rush-wal", "rush-mark"] {
        std::fs::copy(dir.join(file), folder.join(file))
            .unwrap_or_else(|e| panic!("fixture {file}: {e} (RUSH_REGENERATE_GOLDEN=1 writes it)"));
    }
}

fn assert_replayed(db: &SledManager) {
    assert_eq!(db.get(b"golden/1").unwrap(), None, "deleted by commit 3");
    assert_eq!(db.get(b"golden/2").unwrap(), Some(vec![2; 40]));
    assert_eq!(db.get(b"golden/3").unwrap(), Some(vec![3; 40]));
    let log = db.scan(b"golden-log/", b"golden-log0", 10, false).unwrap();
    assert_eq!(log.len(), 3, "one log block per commit");
}

#[test]
fn a_format_1_log_replays_into_an_empty_sled_folder() {
    let folder = tempfile::tempdir().unwrap();
    fixtures_in(folder.path());
    let db = SledManager::with_config(folder.path(), logged()).unwrap();
    assert_replayed(&db);
    // The log goes on after the three commits.
    let (committed, step) = db.commit_durable(&batches()[0]).unwrap();
    committed.unwrap();
    confirm_now(step).unwrap();
}

#[test]
fn a_format_1_log_replays_into_a_database_opened_without_it_and_is_removed() {
    let folder = tempfile::tempdir().unwrap();
    fixtures_in(folder.path());
    let without_log = SledConfig {
        write_ahead_log: false,
        ..SledConfig::default()
    };
    let db = SledManager::with_config(folder.path(), without_log).unwrap();
    assert_replayed(&db);
    assert!(!folder.path().join("rush-wal").exists());
}

#[test]
fn the_fixture_without_its_last_record_is_refused_by_the_mark() {
    let folder = tempfile::tempdir().unwrap();
    fixtures_in(folder.path());
    let wal = folder.path().join("rush-wal");
    let bytes = std::fs::read(&wal).unwrap();
    std::fs::write(&wal, &bytes[..3 * 512]).unwrap();
    let error = SledManager::new(folder.path()).err().unwrap();
    assert!(
        matches!(&error, rush_store::Error::Corrupted { reason, .. } if reason.contains("lost the last 1 commits")),
        "{error:?}"
    );
}
