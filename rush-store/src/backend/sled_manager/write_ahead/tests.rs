//! The sled engine with its write-ahead log, through `SledManager`: what the log carries
//! across an unclean stop, what an open without it does, checkpoints and backups. The
//! engine contract, the damage matrix and a SIGKILL check run in `tests/engine_conformance.rs`,
//! and every suite runs on it (the default) and with `RUSH_TEST_ENGINE=sled-wal`.
use super::super::{SledConfig, SledManager};
use crate::backend::{Backend, LogAppend, WriteBatch, WriteOp, confirm_now};
use crate::error::Error;
use std::path::Path;

fn logged() -> SledConfig {
    SledConfig {
        write_ahead_log: true,
        // sled's own flusher stays out of the way: only the log makes commits durable.
        flush_every_ms: 3_600_000,
        ..SledConfig::default()
    }
}

/// sled without its log (the default has one).
fn without_log() -> SledConfig {
    SledConfig {
        write_ahead_log: false,
        ..SledConfig::default()
    }
}

fn put(i: u32) -> WriteBatch {
    WriteBatch {
        ops: vec![WriteOp::Put {
            key: format!("k{i:04}").into_bytes(),
            value: vec![i as u8; 100],
        }],
        appends: vec![LogAppend {
            log: b"log/".to_vec(),
            value: i.to_be_bytes().to_vec(),
        }],
        ..WriteBatch::default()
    }
}

fn commit_durably(db: &SledManager, batch: &WriteBatch) {
    let (committed, step) = db.commit_durable(batch).unwrap();
    committed.unwrap();
    confirm_now(step).unwrap();
}

/// A copy of the folder's files as they are now, sled's unflushed state and all: what a
/// crash of the process would leave.
fn unclean_copy(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
    }
    to
}

/// `count` commits on a database with the log, and an unclean copy of its folder taken
/// before it closed.
fn unclean_after(count: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = SledManager::with_config(dir.path(), logged()).unwrap();
    for i in 0..count {
        commit_durably(&db, &put(i));
    }
    let copy = unclean_copy(dir.path());
    drop(db);
    copy
}

fn assert_holds(db: &SledManager, count: u32) {
    for i in 0..count {
        assert_eq!(
            db.get(format!("k{i:04}").as_bytes()).unwrap(),
            Some(vec![i as u8; 100]),
            "commit {i}"
        );
    }
    let entries = db.scan(b"log/", b"log0", usize::MAX, false).unwrap();
    assert_eq!(entries.len(), count as usize, "one log block per commit");
}

#[test]
fn commits_the_log_made_durable_are_replayed_when_sleds_files_lack_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = SledManager::with_config(dir.path(), logged()).unwrap();
    for i in 0..40 {
        commit_durably(&db, &put(i));
    }
    // `commit` (Periodic) is logged too: a crash of the process keeps its record.
    db.commit(&put(40)).unwrap().unwrap();
    let copy = unclean_copy(dir.path());
    let raw = unclean_copy(dir.path());
    drop(db);
    // sled's own files, without the log, lack most of them.
    {
        let sled_alone = sled::open(raw.path()).unwrap();
        let kept = (0..41)
            .filter(|i| sled_alone.get(format!("k{i:04}")).unwrap().is_some())
            .count();
        assert!(kept < 41, "sled kept all {kept}: the test shows nothing");
    }
    let reopened = SledManager::with_config(copy.path(), logged()).unwrap();
    assert_holds(&reopened, 41);
    // And the log goes on after the replayed commits.
    commit_durably(&reopened, &put(41));
    drop(reopened);
    let again = SledManager::with_config(copy.path(), logged()).unwrap();
    assert_holds(&again, 42);
}

#[test]
fn an_open_without_the_log_replays_it_checkpoints_and_removes_it() {
    let copy = unclean_after(10);
    let plain = SledManager::with_config(copy.path(), without_log()).unwrap();
    assert_holds(&plain, 10);
    assert!(!copy.path().join(super::WAL_FILE).exists());
    commit_durably(&plain, &put(10));
    drop(plain);
    // Back to the log: a new one starts after what sled holds.
    let logged_again = SledManager::with_config(copy.path(), logged()).unwrap();
    assert_holds(&logged_again, 11);
    commit_durably(&logged_again, &put(11));
    let copy_again = unclean_copy(copy.path());
    drop(logged_again);
    assert_holds(
        &SledManager::with_config(copy_again.path(), logged()).unwrap(),
        12,
    );
}

#[test]
fn the_log_starts_over_at_each_checkpoint_and_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let config = SledConfig {
        checkpoint_bytes: 8 * 1024,
        ..logged()
    };
    let db = SledManager::with_config(dir.path(), config).unwrap();
    for i in 0..300 {
        commit_durably(&db, &put(i));
    }
    // 300 records of one 512-byte sector each (150 KiB), checkpointed every 16: the file
    // never grows past its first 1 MiB chunk, and the epoch holds at most 16 records.
    let len = std::fs::metadata(dir.path().join(super::WAL_FILE))
        .unwrap()
        .len();
    assert_eq!(len, 1 << 20);
    let (log, _) = super::super::wal::WriteAheadLog::open(dir.path(), 300).unwrap();
    assert!(log.len() <= 16 * 512, "{} bytes of records", log.len());
    let copy = unclean_copy(dir.path());
    drop(db);
    assert_holds(&SledManager::with_config(copy.path(), config).unwrap(), 300);
}

#[test]
fn a_backup_is_a_whole_database_even_while_sled_has_not_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let db = SledManager::with_config(dir.path(), logged()).unwrap();
    for i in 0..25 {
        commit_durably(&db, &put(i));
    }
    let dest = tempfile::tempdir().unwrap();
    let copied = dest.path().join("copy");
    db.copy_files_to(&copied).unwrap();
    drop(db);
    // Opened without the log: the copy holds everything in sled's own files.
    let restored = SledManager::new(&copied).unwrap();
    assert_holds(&restored, 25);
}

#[test]
fn the_log_needs_sync_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = SledConfig {
        sync_to_disk: false,
        ..logged()
    };
    let error = SledManager::with_config(dir.path(), config).err().unwrap();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
}

#[test]
fn a_log_cut_after_the_mark_counted_its_commits_is_damage() {
    let copy = unclean_after(10);
    // The last four records gone.
    keep_records(copy.path(), 6);
    let error = SledManager::with_config(copy.path(), logged())
        .err()
        .unwrap();
    let Error::Corrupted { reason, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(
        reason.contains("the engine lost the last 4 commits"),
        "{reason}"
    );
}

/// Builds from before the log know only version 1 of the mark: version 2 makes them
/// refuse the folder instead of opening sled without the commits only the log holds.
#[test]
fn a_folder_with_the_log_carries_a_mark_of_version_2_until_opened_without_it() {
    let version = |folder: &Path| {
        let mark = std::fs::read(folder.join("rush-mark")).unwrap();
        u32::from_be_bytes(mark[8..12].try_into().unwrap())
    };
    let copy = unclean_after(3);
    assert_eq!(version(copy.path()), 2);
    drop(SledManager::with_config(copy.path(), without_log()).unwrap());
    assert_eq!(version(copy.path()), 1);
    drop(SledManager::with_config(copy.path(), logged()).unwrap());
    assert_eq!(version(copy.path()), 2);
}

/// `put(i)`, and the key `hot` set to `i`: a key every commit rewrites.
fn put_hot(i: u32) -> WriteBatch {
    let mut batch = put(i);
    batch.ops.push(WriteOp::Put {
        key: b"hot".to_vec(),
        value: i.to_be_bytes().to_vec(),
    });
    batch
}

/// Cuts the folder's log after its first `records` records (one sector each after the
/// header, as the commits of these tests are).
fn keep_records(folder: &Path, records: u64) {
    let wal = folder.join(super::WAL_FILE);
    let file = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    file.set_len(512 + records * 512).unwrap();
}

/// A database with the log in a new folder: five durable commits of `batch(0..5)`, then
/// five without durability (`Backend::commit`) of `batch(5..10)`.
fn five_durable_then_five_periodic(
    batch: fn(u32) -> WriteBatch,
) -> (tempfile::TempDir, SledManager) {
    let dir = tempfile::tempdir().unwrap();
    let db = SledManager::with_config(dir.path(), logged()).unwrap();
    for i in 0..5 {
        commit_durably(&db, &batch(i));
    }
    for i in 5..10 {
        db.commit(&batch(i)).unwrap().unwrap();
    }
    (dir, db)
}

fn marked(folder: &Path) -> u64 {
    crate::backend::commit_mark::read(&folder.join("rush-mark"))
        .unwrap()
        .unwrap()
}

#[test]
fn commits_without_durability_survive_a_crash_of_the_process_and_are_synced_by_the_next_flush() {
    let (dir, db) = five_durable_then_five_periodic(put);
    // Not durable yet: the mark counts only what a power loss cannot take.
    assert_eq!(marked(dir.path()), 5);
    // Their records are written, so a crash of the process keeps them.
    let copy = unclean_copy(dir.path());
    db.flush().unwrap();
    assert_eq!(marked(dir.path()), 10);
    drop(db);
    let reopened = SledManager::with_config(copy.path(), logged()).unwrap();
    assert_holds(&reopened, 10);
}

/// A power loss can keep sled's batches of commits without durability and lose their
/// unsynced records: the open finds sled ahead of the log. Replaying the log's older
/// records would take back later writes of keys they share.
#[test]
fn sled_ahead_of_the_log_is_kept_as_it_is_not_rolled_back_by_older_records() {
    let (dir, db) = five_durable_then_five_periodic(put_hot);
    // sled writes its files; the log's last five records never reach the disk.
    db.inner.db.flush().unwrap();
    let copy = unclean_copy(dir.path());
    drop(db);
    keep_records(copy.path(), 5);
    let reopened = SledManager::with_config(copy.path(), logged()).unwrap();
    assert_holds(&reopened, 10);
    assert_eq!(
        reopened.get(b"hot").unwrap(),
        Some(9u32.to_be_bytes().to_vec())
    );
    // The log goes on after what sled holds.
    commit_durably(&reopened, &put_hot(10));
    let again = unclean_copy(copy.path());
    drop(reopened);
    let again = SledManager::with_config(again.path(), logged()).unwrap();
    assert_holds(&again, 11);
    assert_eq!(
        again.get(b"hot").unwrap(),
        Some(10u32.to_be_bytes().to_vec())
    );
}

/// A database that stops cleanly checkpoints: the next open has nothing to replay.
#[test]
fn a_database_that_stops_leaves_nothing_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let engine = SledManager::with_config(dir.path(), logged()).unwrap();
    let db = crate::Database::open(engine.clone(), crate::DatabaseConfig::default()).unwrap();
    let table = db.table::<u64>("t").unwrap();
    for i in 0..20 {
        table.put(&format!("k{i}"), &i).unwrap();
    }
    db.shutdown_blocking().unwrap();
    let commits = super::super::open::stored_commits(&engine.inner.db).unwrap();
    drop(db);
    drop(table);
    drop(engine);
    let (_, recovered) = super::super::wal::WriteAheadLog::open(dir.path(), commits).unwrap();
    assert_eq!(recovered.last_number(), None, "records left to replay");
}
