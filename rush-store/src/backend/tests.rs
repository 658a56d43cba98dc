//! The backend contract, checked on both engines.
use super::*;

fn engines() -> Vec<(Box<dyn Backend>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sled = SledManager::new(dir.path()).unwrap();
    let redb_dir = tempfile::tempdir().unwrap();
    let redb = RedbManager::new(redb_dir.path()).unwrap();
    vec![
        (Box::new(MemoryManager::default()), None),
        (Box::new(sled), Some(dir)),
        (Box::new(redb), Some(redb_dir)),
    ]
}

fn put(key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

#[test]
fn scans_are_ordered_bounded_and_reversible() -> crate::Result<()> {
    for (db, _dir) in engines() {
        let ops = [b"b".as_ref(), b"a", b"c", b"ab", b"d"]
            .iter()
            .map(|k| put(k, k))
            .collect();
        db.commit(&WriteBatch {
            guards: vec![],
            ops,
            ..Default::default()
        })?
        .unwrap();
        let keys = |v: Vec<(Vec<u8>, Vec<u8>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(db.scan(b"a", b"d", 10, false)?),
            vec![b"a".to_vec(), b"ab".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(
            keys(db.scan(b"a", b"d", 2, true)?),
            vec![b"c".to_vec(), b"b".to_vec()]
        );
        assert!(db.scan(b"d", b"a", 10, false)?.is_empty());
    }
    Ok(())
}

#[test]
fn a_failed_guard_writes_nothing() -> crate::Result<()> {
    for (db, _dir) in engines() {
        db.commit(&WriteBatch {
            guards: vec![],
            ops: vec![put(b"head", b"1")],
            ..Default::default()
        })?
        .unwrap();
        let batch = WriteBatch {
            guards: vec![
                Guard {
                    key: b"free".to_vec(),
                    expected: None,
                },
                Guard {
                    key: b"head".to_vec(),
                    expected: Some(b"0".to_vec()),
                },
            ],
            ops: vec![put(b"x", b"1"), put(b"head", b"2")],
            ..Default::default()
        };
        let failed = db.commit(&batch)?.unwrap_err();
        assert_eq!(
            failed,
            GuardFailed {
                index: 1,
                actual: Some(b"1".to_vec())
            }
        );
        assert_eq!(db.get(b"x")?, None);
        assert_eq!(db.get(b"head")?, Some(b"1".to_vec()));
    }
    Ok(())
}

#[test]
fn guarded_commits_from_many_threads_never_lose_an_increment() -> crate::Result<()> {
    for (db, _dir) in engines() {
        let db: std::sync::Arc<dyn Backend> = std::sync::Arc::from(db);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let mut done = 0;
                    while done < 100 {
                        let current = db.get(b"n").unwrap();
                        let n = current
                            .as_ref()
                            .map_or(0, |v| u64::from_be_bytes(v.as_slice().try_into().unwrap()));
                        let batch = WriteBatch {
                            guards: vec![Guard {
                                key: b"n".to_vec(),
                                expected: current,
                            }],
                            ops: vec![put(b"n", &(n + 1).to_be_bytes())],
                            ..Default::default()
                        };
                        if db.commit(&batch).unwrap().is_ok() {
                            done += 1;
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(db.get(b"n")?, Some(400u64.to_be_bytes().to_vec()));
    }
    Ok(())
}

#[test]
fn sled_data_survives_reopen_and_the_same_folder_shares_one_database() -> crate::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    {
        let a = SledManager::new(dir.path())?;
        let b = SledManager::new(dir.path())?;
        a.commit(&WriteBatch {
            guards: vec![],
            ops: vec![put(b"k", b"v")],
            ..Default::default()
        })?
        .unwrap();
        assert_eq!(b.get(b"k")?, Some(b"v".to_vec()));
        a.flush()?;
    }
    let reopened = SledManager::new(dir.path())?;
    assert_eq!(reopened.get(b"k")?, Some(b"v".to_vec()));
    Ok(())
}

#[test]
fn a_folder_can_be_reopened_right_after_its_last_handle_is_dropped() -> crate::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    for round in 0u8..40 {
        let db = SledManager::new(dir.path())?;
        // Enough data that sled's background threads are still busy when the handle goes.
        let ops = (0..200u16)
            .map(|i| put(&[round, (i >> 8) as u8, i as u8], &[round; 512]))
            .collect();
        db.commit(&WriteBatch {
            guards: vec![],
            ops,
            ..Default::default()
        })?
        .unwrap();
        drop(db);
    }
    assert_eq!(
        SledManager::new(dir.path())?
            .scan(&[0], &[255], usize::MAX, false)?
            .len(),
        8_000
    );
    Ok(())
}

#[test]
fn guards_stay_exact_when_a_value_grows_past_the_cache_and_shrinks_again() -> crate::Result<()> {
    for (db, _dir) in engines() {
        let set = |value: &[u8], expected: Option<&[u8]>| WriteBatch {
            guards: vec![Guard {
                key: b"k".to_vec(),
                expected: expected.map(<[u8]>::to_vec),
            }],
            ops: vec![put(b"k", value)],
            ..Default::default()
        };
        let big = vec![9u8; 1000];
        db.commit(&set(b"small", None))?.unwrap();
        db.commit(&set(&big, Some(b"small")))?.unwrap();
        assert!(
            db.commit(&set(b"x", Some(b"small")))?.is_err(),
            "stale small value"
        );
        db.commit(&set(b"tiny", Some(&big)))?.unwrap();
        assert!(
            db.commit(&set(b"y", Some(&big)))?.is_err(),
            "stale big value"
        );
        db.commit(&WriteBatch {
            guards: vec![],
            ops: vec![WriteOp::Delete { key: b"k".to_vec() }],
            ..Default::default()
        })?
        .unwrap();
        assert!(db.commit(&set(b"z", Some(b"tiny")))?.is_err(), "deleted");
        db.commit(&set(b"again", None))?.unwrap();
        assert_eq!(db.get(b"k")?, Some(b"again".to_vec()));
    }
    Ok(())
}
