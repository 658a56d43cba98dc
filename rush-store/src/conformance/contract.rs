//! The rules every engine keeps whether or not it has files: atomic guarded batches,
//! ordered scans, reserved keys, log offsets.

use super::{EngineUnderTest, Outcome, Report, Violation, engine, ensure, scratch};
use crate::backend::commit_mark::RESERVED_PREFIX;
use crate::backend::{
    Backend, Guard, GuardFailed, LogAppend, WriteBatch, WriteOp, block_end, decode_block, offset_of,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// One check on a fresh database: what it saw, or the rule broken.
type Check = fn(&dyn Backend) -> Outcome<String>;

/// Runs every check of this module on a fresh database each.
///
/// # Errors
///
/// The first [`Violation`] of the checks below, or one for an engine that does not open.
pub fn check_all(engine: &EngineUnderTest, report: &mut Report) -> Outcome {
    let checks: [(&'static str, Check); 5] = [
        ("guarded batches", guarded_batches),
        ("ordered scans", ordered_scans),
        ("reserved keys", reserved_keys),
        ("log offsets", log_offsets),
        ("concurrent log offsets", |db| {
            concurrent_log_offsets(db, 4, 150)
        }),
    ];
    for (name, run) in checks {
        let dir = scratch(name)?;
        let db = engine.open.as_ref()(dir.path()).map_err(|e| Violation {
            check: name,
            detail: format!("cannot open {} on a fresh folder: {e}", engine.name),
        })?;
        let seen = run(db.as_ref())?;
        report.lines.push((name, seen));
    }
    Ok(())
}

/// A put of `key` = `value`.
pub fn put(key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn batch(ops: Vec<WriteOp>) -> WriteBatch {
    WriteBatch {
        ops,
        ..WriteBatch::default()
    }
}

fn commit(check: &'static str, db: &dyn Backend, batch: &WriteBatch) -> Outcome {
    match engine(check, db.commit(batch))? {
        Ok(()) => Ok(()),
        Err(failed) => Err(Violation {
            check,
            detail: format!("a batch without failing guards was refused: {failed:?}"),
        }),
    }
}

/// A failed guard writes nothing (puts, deletes or appends); holding guards apply all of
/// the batch, in order.
///
/// # Errors
///
/// A [`Violation`] naming the rule broken; an engine error where none was expected is a
/// [`Violation`] too, with the error in its detail.
pub fn guarded_batches(db: &dyn Backend) -> Outcome<String> {
    const CHECK: &str = "guarded batches";
    commit(
        CHECK,
        db,
        &batch(vec![put(b"head", b"1"), put(b"gone", b"x")]),
    )?;
    let failing = WriteBatch {
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
        ops: vec![
            put(b"x", b"1"),
            put(b"head", b"2"),
            WriteOp::Delete {
                key: b"gone".to_vec(),
            },
        ],
        appends: vec![LogAppend {
            log: b"\x05log".to_vec(),
            value: b"never".to_vec(),
        }],
    };
    let failed = engine(CHECK, db.commit(&failing))?;
    ensure(
        failed
            == Err(GuardFailed {
                index: 1,
                actual: Some(b"1".to_vec()),
            }),
        CHECK,
        || format!("a batch whose second guard fails returned {failed:?}"),
    )?;
    let after = [b"x".as_ref(), b"head", b"gone"].map(|k| db.get(k));
    let after = engine(CHECK, after.into_iter().collect::<crate::Result<Vec<_>>>())?;
    ensure(
        after == [None, Some(b"1".to_vec()), Some(b"x".to_vec())],
        CHECK,
        || format!("a refused batch changed data: x, head, gone = {after:?}"),
    )?;
    let log = engine(CHECK, db.scan(b"\x05log", b"\x05loh", 10, false))?;
    ensure(log.is_empty(), CHECK, || {
        "a refused batch appended to a log".into()
    })?;
    let holding = WriteBatch {
        guards: vec![
            Guard {
                key: b"head".to_vec(),
                expected: Some(b"1".to_vec()),
            },
            Guard {
                key: b"free".to_vec(),
                expected: None,
            },
        ],
        ops: vec![
            put(b"head", b"2"),
            put(b"k", b"first"),
            put(b"k", b"second"),
            WriteOp::Delete {
                key: b"gone".to_vec(),
            },
        ],
        appends: Vec::new(),
    };
    commit(CHECK, db, &holding)?;
    let after = [b"head".as_ref(), b"k", b"gone"].map(|k| db.get(k));
    let after = engine(CHECK, after.into_iter().collect::<crate::Result<Vec<_>>>())?;
    ensure(
        after == [Some(b"2".to_vec()), Some(b"second".to_vec()), None],
        CHECK,
        || format!("a batch whose guards hold applied as head, k, gone = {after:?}"),
    )?;
    Ok(
        "a failed guard wrote nothing; holding guards applied every write, the last one winning"
            .into(),
    )
}

/// Scans return keys in byte order, bounded, reversible, and an empty range is empty.
///
/// # Errors
///
/// A [`Violation`] naming the rule broken; an engine error where none was expected is a
/// [`Violation`] too, with the error in its detail.
pub fn ordered_scans(db: &dyn Backend) -> Outcome<String> {
    const CHECK: &str = "ordered scans";
    let keys: [&[u8]; 10] = [
        b"b",
        b"a",
        b"c",
        b"ab",
        b"d",
        b"\x00",
        b"\x01\x00",
        b"\x7f",
        b"\x80",
        b"\xfe\xff",
    ];
    commit(CHECK, db, &batch(keys.iter().map(|k| put(k, k)).collect()))?;
    let mut sorted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    sorted.sort();
    let names = |v: Vec<(Vec<u8>, Vec<u8>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    let all = names(engine(CHECK, db.scan(b"", &[0xFF; 4], usize::MAX, false))?);
    ensure(all == sorted, CHECK, || {
        format!("a full scan returned {all:?}, not {sorted:?}")
    })?;
    let some = names(engine(CHECK, db.scan(b"a", b"d", 10, false))?);
    ensure(
        some == [b"a".to_vec(), b"ab".to_vec(), b"b".to_vec(), b"c".to_vec()],
        CHECK,
        || format!("scan [a, d) returned {some:?}"),
    )?;
    let reversed = names(engine(CHECK, db.scan(b"a", b"d", 2, true))?);
    ensure(reversed == [b"c".to_vec(), b"b".to_vec()], CHECK, || {
        format!("reverse scan [a, d) limit 2 returned {reversed:?}")
    })?;
    let empty = engine(CHECK, db.scan(b"d", b"a", 10, false))?;
    ensure(empty.is_empty(), CHECK, || {
        "a scan with start after end returned entries".into()
    })?;
    let mut visited = Vec::new();
    engine(
        CHECK,
        db.visit_range(b"a", b"z", &mut |key, _| {
            visited.push(key.to_vec());
            Ok(visited.len() < 3)
        }),
    )?;
    ensure(
        visited == [b"a".to_vec(), b"ab".to_vec(), b"b".to_vec()],
        CHECK,
        || format!("a visit stopped after 3 saw {visited:?}"),
    )?;
    Ok(format!(
        "{} keys in byte order, bounded, reversed, visited",
        keys.len()
    ))
}

/// Keys starting with the reserved prefix cannot be written and are never read.
///
/// # Errors
///
/// A [`Violation`] naming the rule broken; an engine error where none was expected is a
/// [`Violation`] too, with the error in its detail.
pub fn reserved_keys(db: &dyn Backend) -> Outcome<String> {
    const CHECK: &str = "reserved keys";
    let mut key = RESERVED_PREFIX.to_vec();
    key.extend_from_slice(b"mine");
    commit(CHECK, db, &batch(vec![put(b"\xfe", b"v")]))?;
    let refused = db.commit(&batch(vec![put(&key, b"v")]));
    ensure(
        matches!(refused, Err(crate::Error::InvalidArgument(_))),
        CHECK,
        || format!("a batch writing a reserved key returned {refused:?}"),
    )?;
    let all = engine(CHECK, db.scan(b"", &[0xFF; 16], usize::MAX, false))?;
    ensure(
        all.iter().all(|(k, _)| !k.starts_with(&RESERVED_PREFIX)),
        CHECK,
        || "a scan returned a reserved key".into(),
    )?;
    ensure(engine(CHECK, db.get(&key))?.is_none(), CHECK, || {
        "a read returned a reserved key".into()
    })?;
    Ok("refused on write, hidden from reads and scans".into())
}

/// The entries of `log`, in offset order, checking that blocks are gap-free from 1.
///
/// # Errors
///
/// A [`Violation`] of `check` for a malformed block, a gap, or an engine error.
pub fn read_log(check: &'static str, db: &dyn Backend, log: &[u8]) -> Outcome<Vec<Vec<u8>>> {
    let end = crate::keys::prefix_end(log);
    let blocks = engine(check, db.scan(log, &end, usize::MAX, false))?;
    let mut entries = Vec::new();
    for (key, block) in blocks {
        let first = offset_of(log, &key).ok_or_else(|| Violation {
            check,
            detail: format!("key {key:?} in log {log:?} is not a block key"),
        })?;
        ensure(first == entries.len() as u64 + 1, check, || {
            format!(
                "log {log:?}: a block starts at offset {first} after {} entries (a gap or an overlap)",
                entries.len()
            )
        })?;
        let values = decode_block(&key, &block).ok_or_else(|| Violation {
            check,
            detail: format!("block at {first} of log {log:?} does not decode"),
        })?;
        let last = engine(check, block_end(log, &key, &block))?;
        let expected_last = first
            .checked_add(values.len() as u64)
            .and_then(|end| end.checked_sub(1));
        ensure(expected_last == Some(last), check, || {
            format!(
                "block at {first}: block_end {last} for {} entries",
                values.len()
            )
        })?;
        let visited = values.visit(&mut |value| {
            entries.push(value.to_vec());
            Ok(true)
        });
        engine(check, visited)?;
    }
    Ok(entries)
}

fn append(log: &[u8], value: &[u8]) -> LogAppend {
    LogAppend {
        log: log.to_vec(),
        value: value.to_vec(),
    }
}

/// Appends to two logs in one batch number each log from 1, gap-free, in commit order.
///
/// # Errors
///
/// A [`Violation`] naming the rule broken; an engine error where none was expected is a
/// [`Violation`] too, with the error in its detail.
pub fn log_offsets(db: &dyn Backend) -> Outcome<String> {
    const CHECK: &str = "log offsets";
    let (a, b) = (b"\x05\x00\x01a".as_ref(), b"\x05\x00\x01b".as_ref());
    // A log whose name is a prefix of another's block keys must not see them.
    commit(
        CHECK,
        db,
        &WriteBatch {
            appends: vec![append(a, b"1"), append(b, b"x"), append(a, b"2")],
            ..WriteBatch::default()
        },
    )?;
    commit(
        CHECK,
        db,
        &WriteBatch {
            appends: vec![append(a, b"3")],
            ..WriteBatch::default()
        },
    )?;
    let entries_a = read_log(CHECK, db, a)?;
    let entries_b = read_log(CHECK, db, b)?;
    ensure(
        entries_a == [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()] && entries_b == [b"x".to_vec()],
        CHECK,
        || format!("logs hold {entries_a:?} and {entries_b:?}"),
    )?;
    Ok("two logs in one batch, one block each, numbered from 1".into())
}

/// `threads` committers each make `commits` commits appending to one shared log while a
/// reader scans it: every scan sees a gap-free prefix, and in the end every entry is
/// there once, each committer's in its own order.
///
/// # Errors
///
/// A [`Violation`] naming the rule broken; an engine error where none was expected is a
/// [`Violation`] too, with the error in its detail.
pub fn concurrent_log_offsets(db: &dyn Backend, threads: usize, commits: usize) -> Outcome<String> {
    const CHECK: &str = "concurrent log offsets";
    let log = b"\x05\x00\x06shared".as_ref();
    let done = AtomicBool::new(false);
    let scans = std::thread::scope(|scope| -> Outcome<usize> {
        let reader = scope.spawn(|| -> Outcome<usize> {
            let mut scans = 0;
            while !done.load(Ordering::Acquire) {
                read_log(CHECK, db, log)?;
                scans += 1;
            }
            Ok(scans)
        });
        let writers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Outcome {
                    for i in 0..commits {
                        let appends = (0..=i % 3)
                            .map(|j| append(log, format!("{t}-{i}-{j}").as_bytes()))
                            .collect();
                        let batch = WriteBatch {
                            ops: vec![put(format!("w{t}").as_bytes(), &i.to_be_bytes())],
                            appends,
                            ..WriteBatch::default()
                        };
                        commit(CHECK, db, &batch)?;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut outcome = Ok(());
        for writer in writers {
            let joined = writer.join().unwrap_or_else(|_| {
                Err(Violation {
                    check: CHECK,
                    detail: "a committer thread panicked".into(),
                })
            });
            outcome = outcome.and(joined);
        }
        done.store(true, Ordering::Release);
        let scans = reader.join().unwrap_or_else(|_| {
            Err(Violation {
                check: CHECK,
                detail: "the reader thread panicked".into(),
            })
        });
        outcome.and(scans)
    })?;
    let entries = read_log(CHECK, db, log)?;
    let expected: usize = (0..commits).map(|i| i % 3 + 1).sum::<usize>() * threads;
    let unique: HashSet<&Vec<u8>> = entries.iter().collect();
    ensure(
        entries.len() == expected && unique.len() == expected,
        CHECK,
        || {
            format!(
                "{} entries ({} distinct), expected {expected}",
                entries.len(),
                unique.len()
            )
        },
    )?;
    for t in 0..threads {
        let prefix = format!("{t}-");
        let mine: Vec<String> = entries
            .iter()
            .filter_map(|e| std::str::from_utf8(e).ok())
            .filter(|e| e.starts_with(&prefix))
            .map(str::to_owned)
            .collect();
        let expected: Vec<String> = (0..commits)
            .flat_map(|i| (0..=i % 3).map(move |j| format!("{t}-{i}-{j}")))
            .collect();
        ensure(mine == expected, CHECK, || {
            format!("committer {t}'s entries are not in its commit order")
        })?;
    }
    Ok(format!(
        "{threads} threads x {commits} commits, {expected} entries gap-free; {scans} concurrent scans saw only gap-free prefixes"
    ))
}
