use super::*;

#[test]
fn a_mark_round_trips_and_every_flipped_bit_is_damage() {
    let bytes = encode(123_456, VERSION);
    assert_eq!(decode(&bytes), Ok((123_456, VERSION)));
    for bit in 0..LEN * 8 {
        let mut flipped = bytes;
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(decode(&flipped).is_err(), "bit {bit}");
    }
    assert!(decode(&bytes[..LEN - 1]).is_err());
}

#[test]
fn an_engine_behind_its_mark_is_corrupted_and_a_missing_mark_only_when_it_has_commits() -> Result<()>
{
    let dir = tempfile::tempdir().map_err(|e| Error::from_io("tempdir", &e))?;
    let mark = CommitMark::open("test", dir.path(), 0, true)?;
    mark.committed(mark.next()?);
    mark.committed(mark.next()?);
    mark.durable(mark.applied())?;
    drop(mark);
    assert!(matches!(
        CommitMark::open("test", dir.path(), 1, true),
        Err(Error::Corrupted { .. })
    ));
    let again = CommitMark::open("test", dir.path(), 5, true)?;
    assert_eq!(again.next()?, 6);
    drop(again);
    std::fs::remove_file(dir.path().join(MARK_FILE)).map_err(|e| Error::from_io("rm", &e))?;
    assert!(matches!(
        CommitMark::open("test", dir.path(), 5, true),
        Err(Error::Corrupted { .. })
    ));
    CommitMark::open("test", dir.path(), 0, true)?;
    Ok(())
}

#[test]
fn an_empty_mark_is_a_creation_cut_short_and_damage_only_beside_commits() -> Result<()> {
    // A process killed between creating the mark and writing it (crash_loop found it on
    // redb): nothing was ever committed, so the database opens.
    let dir = tempfile::tempdir().map_err(|e| Error::from_io("tempdir", &e))?;
    std::fs::write(dir.path().join(MARK_FILE), b"").map_err(|e| Error::from_io("w", &e))?;
    check_before_open(dir.path())?;
    let mark = CommitMark::open("test", dir.path(), 0, true)?;
    assert_eq!(mark.next()?, 1);
    drop(mark);
    assert_eq!(read(&dir.path().join(MARK_FILE))?, Some(0), "written now");
    // Beside an engine with commits, an emptied mark is still damage.
    std::fs::write(dir.path().join(MARK_FILE), b"").map_err(|e| Error::from_io("w", &e))?;
    assert!(matches!(
        CommitMark::open("test", dir.path(), 3, true),
        Err(Error::Corrupted { .. })
    ));
    Ok(())
}

fn unsynced(mark: &CommitMark) -> bool {
    mark.file
        .as_ref()
        .is_some_and(|f| f.lock().is_ok_and(|f| f.unsynced))
}

#[test]
fn a_confirmation_writes_the_mark_before_the_answers_and_leaves_its_sync() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::from_io("tempdir", &e))?;
    let mark = Arc::new(CommitMark::open("test", dir.path(), 0, true)?);
    mark.committed(mark.next()?);
    mark.committed(mark.next()?);
    let step = mark.confirmation(mark.applied()).ok_or(Error::Shutdown)?;
    let settle = step()?.ok_or(Error::Shutdown)?;
    // Written (a process killed now keeps it), not yet synced.
    assert_eq!(read(&dir.path().join(MARK_FILE))?, Some(2));
    assert!(unsynced(&mark));
    settle()?;
    assert!(!unsynced(&mark));
    // Nothing new: no step.
    assert!(mark.confirmation(mark.applied()).is_none());
    Ok(())
}

#[test]
fn a_sync_that_fails_after_the_answers_is_reported_by_the_next_write() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::from_io("tempdir", &e))?;
    let mark = Arc::new(CommitMark::open("test", dir.path(), 0, true)?);
    mark.committed(mark.next()?);
    let step = mark.confirmation(mark.applied()).ok_or(Error::Shutdown)?;
    let settle = step()?.ok_or(Error::Shutdown)?;
    if let Some(file) = &mark.file {
        file.lock().map_err(|_| Error::Shutdown)?.fail_next_sync = true;
    }
    assert!(matches!(settle(), Err(Error::DiskFull { .. })));
    assert!(unsynced(&mark), "still to sync");
    mark.committed(mark.next()?);
    let next = mark.confirmation(mark.applied()).ok_or(Error::Shutdown)?;
    assert!(
        matches!(next(), Err(Error::DiskFull { .. })),
        "reported once"
    );
    // Reported; the next write goes on, and its sync covers the earlier one too.
    mark.durable(mark.applied())?;
    assert!(!unsynced(&mark));
    assert_eq!(read(&dir.path().join(MARK_FILE))?, Some(2));
    Ok(())
}

#[test]
fn scans_stop_before_the_reserved_keys() {
    assert_eq!(clamp_end(&[0xFF; 8]), &RESERVED_PREFIX);
    assert_eq!(clamp_end(b"\x05abc"), b"\x05abc");
    assert!(is_reserved(COUNTER_KEY));
}

#[test]
fn a_logged_mark_is_version_2_and_goes_back_to_1_with_its_count() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::from_io("tempdir", &e))?;
    let path = dir.path().join(MARK_FILE);
    let mark = CommitMark::open("test", dir.path(), 0, true)?;
    mark.durable(7)?;
    mark.set_logged(true)?;
    let bytes = std::fs::read(&path).map_err(|e| Error::from_io("read", &e))?;
    assert_eq!(decode(&bytes), Ok((7, VERSION_LOGGED)));
    // Written with the version from now on, and read by this build like version 1.
    mark.durable(9)?;
    assert_eq!(read(&path)?, Some(9));
    let reopened = CommitMark::open("test", dir.path(), 9, true)?;
    reopened.set_logged(false)?;
    let bytes = std::fs::read(&path).map_err(|e| Error::from_io("read", &e))?;
    assert_eq!(decode(&bytes), Ok((9, VERSION)));
    Ok(())
}
