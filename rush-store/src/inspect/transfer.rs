//! Copying a database record by record to another engine (`rush migrate`), and checking
//! a copy against its original. Records move as they are stored, keys and sealed bytes
//! alike, so events, snapshots, table rows and log blocks (with their offsets) arrive
//! unchanged and nothing is decrypted. Each page is one atomic batch, flushed; a copy
//! interrupted anywhere goes on after the last page it kept.

use super::Progress;
use crate::backend::{Backend, WriteBatch, WriteOp};
use crate::error::{Error, Result};

/// Records per page (one atomic, flushed batch).
const PAGE: usize = 1024;
/// The key range of every record (engines keep their own keys above it).
const ALL: (&[u8], &[u8]) = (&[], &[0xFF; 64]);

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Records the destination already held from an earlier, interrupted run.
    pub already_there: u64,
    /// Records copied by this run.
    pub copied: u64,
    /// Bytes of keys and values copied by this run.
    pub bytes: u64,
    /// Stopped by `progress` (Ctrl-C) before the end: run it again to go on.
    pub interrupted: bool,
}

/// Copies every record of `from` that `to` does not hold yet, in key order, one atomic,
/// flushed page at a time. `to` must hold nothing but a prefix of `from` (what an
/// interrupted copy leaves): its last key is where the copy goes on, after checking
/// that it is the same record in both. `progress` is called with the records of each
/// page; `false` stops between pages.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when `to` holds records that are not a prefix of `from`'s;
/// [`Error::Storage`] when a page's commit is refused; engine failures ([`Error::Io`],
/// [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`]) of either engine, after
/// which the pages already copied stay and a rerun goes on after them.
pub fn copy_records(
    from: &dyn Backend,
    to: &dyn Backend,
    progress: &mut Progress<'_>,
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let mut start = match to.scan(ALL.0, ALL.1, 1, true)?.pop() {
        None => Vec::new(),
        Some((last, value)) => {
            if from.get(&last)?.as_deref() != Some(value.as_slice()) {
                return Err(Error::InvalidArgument(format!(
                    "the destination holds records that are not the source's (key {}): \
                     give an empty folder, or the one an interrupted copy of this \
                     database left",
                    super::scan::hex_prefix(&last)
                )));
            }
            report.already_there = count(to)?;
            let mut after = last;
            after.push(0);
            after
        }
    };
    loop {
        let page = from.scan(&start, ALL.1, PAGE, false)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        let next = {
            let mut after = last.clone();
            after.push(0);
            after
        };
        let records = page.len() as u64;
        let mut batch = WriteBatch::default();
        for (key, value) in page {
            report.bytes = report
                .bytes
                .saturating_add((key.len() + value.len()) as u64);
            batch.ops.push(WriteOp::Put { key, value });
        }
        to.commit(&batch)?
            .map_err(|failed| Error::storage("copy a page", format!("{failed:?}")))?;
        to.flush()?;
        report.copied += records;
        start = next;
        if !progress(records) {
            report.interrupted = true;
            break;
        }
    }
    Ok(report)
}

/// Checks that `copy` holds exactly the records of `original`, byte for byte. Returns the
/// records compared.
///
/// # Errors
///
/// [`Error::Corrupted`] at the first difference, naming the key; engine failures
/// ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`]) of either
/// engine.
pub fn compare_records(
    original: &dyn Backend,
    copy: &dyn Backend,
    progress: &mut Progress<'_>,
) -> Result<u64> {
    let mut start = Vec::new();
    let mut compared = 0u64;
    loop {
        let ours = original.scan(&start, ALL.1, PAGE, false)?;
        let theirs = copy.scan(&start, ALL.1, PAGE, false)?;
        if ours != theirs {
            let at = ours
                .iter()
                .zip(&theirs)
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(theirs.len()));
            let key = ours
                .get(at)
                .or_else(|| theirs.get(at))
                .map_or_else(|| "the end".to_owned(), |(k, _)| super::scan::hex_prefix(k));
            return Err(Error::Corrupted {
                record: format!("the copy's record at key {key}"),
                reason: "it differs from the original (or one of them lacks it)".into(),
            });
        }
        let Some((last, _)) = ours.last() else {
            return Ok(compared);
        };
        compared += ours.len() as u64;
        if !progress(ours.len() as u64) {
            return Ok(compared);
        }
        start = last.clone();
        start.push(0);
    }
}

fn count(engine: &dyn Backend) -> Result<u64> {
    let mut records = 0u64;
    engine.visit_range(ALL.0, ALL.1, &mut |_, _| {
        records += 1;
        Ok(true)
    })?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryManager;

    fn fill(engine: &MemoryManager, n: u32) -> Result<()> {
        let ops = (0..n)
            .map(|i| WriteOp::Put {
                key: i.to_be_bytes().to_vec(),
                value: vec![7; 10],
            })
            .collect();
        engine
            .commit(&WriteBatch {
                ops,
                ..WriteBatch::default()
            })?
            .map_err(|f| Error::storage("fill", format!("{f:?}")))
    }

    #[test]
    fn an_interrupted_copy_goes_on_where_it_stopped_and_compares_equal() -> Result<()> {
        let (from, to) = (MemoryManager::default(), MemoryManager::default());
        fill(&from, 3000)?;
        let mut pages = 0;
        let first = copy_records(&from, &to, &mut |_| {
            pages += 1;
            pages < 2
        })?;
        assert!(first.interrupted);
        assert_eq!(first.copied, 2048);
        let second = copy_records(&from, &to, &mut |_| true)?;
        assert_eq!((second.already_there, second.copied), (2048, 952));
        assert_eq!(compare_records(&from, &to, &mut |_| true)?, 3000);
        Ok(())
    }

    #[test]
    fn a_destination_with_other_records_is_refused_and_a_difference_is_corrupted() -> Result<()> {
        let (from, to) = (MemoryManager::default(), MemoryManager::default());
        fill(&from, 10)?;
        fill(&to, 1)?;
        to.commit(&WriteBatch {
            ops: vec![WriteOp::Put {
                key: 0u32.to_be_bytes().to_vec(),
                value: vec![8],
            }],
            ..WriteBatch::default()
        })?
        .map_err(|f| Error::storage("fill", format!("{f:?}")))?;
        assert!(matches!(
            copy_records(&from, &to, &mut |_| true),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            compare_records(&from, &to, &mut |_| true),
            Err(Error::Corrupted { .. })
        ));
        Ok(())
    }
}
