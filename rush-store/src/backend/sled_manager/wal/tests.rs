use super::format::RECORD_HEAD;
use super::*;
use proptest::prelude::*;

/// One logged write: a key and its value (`None`: a delete).
type Write = (Vec<u8>, Option<Vec<u8>>);
type Owned = Vec<(u64, Vec<Write>)>;

fn ops_of(writes: &[Write]) -> Vec<LoggedOp<'_>> {
    writes
        .iter()
        .map(|(key, value)| match value {
            Some(value) => LoggedOp::Put(key, value),
            None => LoggedOp::Delete(key),
        })
        .collect()
}

fn replayed(recovered: &Recovered) -> Owned {
    let mut out = Vec::new();
    recovered
        .replay(|number, ops| {
            let writes = ops
                .iter()
                .map(|op| match op {
                    LoggedOp::Put(key, value) => (key.to_vec(), Some(value.to_vec())),
                    LoggedOp::Delete(key) => (key.to_vec(), None),
                })
                .collect();
            out.push((number, writes));
            Ok(())
        })
        .unwrap();
    out
}

fn commit(n: u64, len: usize) -> (u64, Vec<Write>) {
    (
        n,
        vec![
            (format!("key-{n}").into_bytes(), Some(vec![n as u8; len])),
            (b"gone".to_vec(), None),
        ],
    )
}

/// The reason of the `Corrupted` an open of the log in `folder` must end with.
fn refusal(folder: &Path, sled_commits: u64) -> String {
    match WriteAheadLog::open(folder, sled_commits) {
        Err(Error::Corrupted { reason, .. }) => reason,
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("the open went on"),
    }
}

fn write_all(folder: &Path, base: u64, commits: &Owned) -> u64 {
    let (mut log, recovered) = WriteAheadLog::open(folder, base).unwrap();
    assert!(recovered.last_number().is_none());
    log.start().unwrap();
    for (number, writes) in commits {
        log.append(*number, &ops_of(writes), true).unwrap();
    }
    log.end
}

#[test]
fn a_new_log_starts_after_sleds_commits_and_replays_what_was_appended_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let commits: Owned = (8..=10).map(|n| commit(n, 700)).collect();
    write_all(dir.path(), 7, &commits);
    let (log, recovered) = WriteAheadLog::open(dir.path(), 7).unwrap();
    assert_eq!(replayed(&recovered), commits);
    assert_eq!(log.next_number, 11);
    // 700-byte values: each record takes two sectors.
    assert_eq!(log.len(), 3 * 2 * SECTOR);
}

#[test]
fn an_append_out_of_order_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = WriteAheadLog::open(dir.path(), 0).unwrap();
    log.start().unwrap();
    let (n, writes) = commit(2, 10);
    assert!(matches!(
        log.append(n, &ops_of(&writes), true),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(log.len(), 0);
}

#[test]
fn a_checkpoint_starts_a_new_epoch_and_the_older_records_stop_counting() {
    let dir = tempfile::tempdir().unwrap();
    let commits: Owned = (1..=3).map(|n| commit(n, 10)).collect();
    write_all(dir.path(), 0, &commits);
    let (mut log, _) = WriteAheadLog::open(dir.path(), 3).unwrap();
    log.start().unwrap();
    log.checkpointed(3).unwrap();
    let (n, writes) = commit(4, 10);
    log.append(n, &ops_of(&writes), true).unwrap();
    drop(log);
    let (_, recovered) = WriteAheadLog::open(dir.path(), 3).unwrap();
    // Commits 2 and 3 of the old epoch are still in the file after the new first record.
    assert_eq!(replayed(&recovered), vec![commit(4, 10)]);
}

#[test]
fn a_base_above_sleds_commits_is_damage_to_sled() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = WriteAheadLog::open(dir.path(), 0).unwrap();
    log.start().unwrap();
    log.checkpointed(5).unwrap();
    drop(log);
    assert!(refusal(dir.path(), 4).contains("sled lost commits"));
}

#[test]
fn a_torn_last_record_ends_the_log_and_the_next_append_takes_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let commits: Owned = (1..=3).map(|n| commit(n, 700)).collect();
    let end = write_all(dir.path(), 0, &commits);
    // The last record's second sector never reached the disk.
    let path = dir.path().join(WAL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let torn = (end - SECTOR) as usize;
    bytes[torn..].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let (mut log, recovered) = WriteAheadLog::open(dir.path(), 0).unwrap();
    assert_eq!(replayed(&recovered), commits[..2].to_vec());
    log.start().unwrap();
    let (n, writes) = commit(3, 5);
    log.append(n, &ops_of(&writes), true).unwrap();
    drop(log);
    let (_, recovered) = WriteAheadLog::open(dir.path(), 0).unwrap();
    let mut expected = commits[..2].to_vec();
    expected.push(commit(3, 5));
    assert_eq!(replayed(&recovered), expected);
}

#[test]
fn a_damaged_record_before_a_valid_one_is_reported_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let commits: Owned = (1..=3).map(|n| commit(n, 10)).collect();
    write_all(dir.path(), 0, &commits);
    let path = dir.path().join(WAL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    // One bit of commit 2's body (the second record, one sector each).
    bytes[2 * SECTOR as usize + RECORD_HEAD + 6] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let error = WriteAheadLog::open(dir.path(), 0).err().unwrap();
    let Error::Corrupted { record, reason } = &error else {
        panic!("{error:?}");
    };
    assert!(record.contains("byte 1024"), "{record}");
    assert!(
        reason.contains("commit 3 follows it") && reason.contains("commit 2 was acknowledged"),
        "{reason}"
    );
}

#[test]
fn a_damaged_header_is_reported_and_the_file_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), 0, &vec![commit(1, 10)]);
    let path = dir.path().join(WAL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let error = WriteAheadLog::open(dir.path(), 0).err().unwrap();
    assert!(
        matches!(&error, Error::Corrupted { record, .. } if record.contains("header")),
        "{error:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn an_unknown_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), 0, &Vec::new());
    let path = dir.path().join(WAL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_be_bytes());
    let crc = crc32fast::hash(&bytes[..28]);
    bytes[28..32].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert!(refusal(dir.path(), 0).contains("unknown version 2"));
}

#[test]
fn a_log_whose_creation_was_cut_short_is_started_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(WAL_FILE), vec![0u8; 100]).unwrap();
    let (mut log, recovered) = WriteAheadLog::open(dir.path(), 4).unwrap();
    assert!(recovered.last_number().is_none());
    assert_eq!(log.next_number, 5);
    // Nothing is written until the open goes on.
    assert_eq!(
        std::fs::read(dir.path().join(WAL_FILE)).unwrap(),
        vec![0u8; 100]
    );
    log.start().unwrap();
    drop(log);
    let (log, _) = WriteAheadLog::open(dir.path(), 4).unwrap();
    assert_eq!((log.epoch, log.next_number), (1, 5));
}

/// The bytes of format 1, pinned (FORMAT.md): a header of epoch 1 after 0 commits, and
/// commit 1 with a put of `k` = `v` and a delete of `d`.
#[test]
fn the_format_is_the_one_format_md_describes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = WriteAheadLog::open(dir.path(), 0).unwrap();
    log.start().unwrap();
    log.append(
        1,
        &[LoggedOp::Put(b"k", b"v"), LoggedOp::Delete(b"d")],
        true,
    )
    .unwrap();
    let bytes = std::fs::read(dir.path().join(WAL_FILE)).unwrap();
    // Grown by one zeroed chunk.
    assert_eq!(bytes.len() as u64, GROW_BY);
    assert!(bytes[1024..].iter().all(|&b| b == 0));
    let mut header = b"RUSHWAL\0".to_vec();
    header.extend_from_slice(&1u32.to_be_bytes());
    header.extend_from_slice(&1u64.to_be_bytes());
    header.extend_from_slice(&0u64.to_be_bytes());
    header.extend_from_slice(&crc32fast::hash(&header).to_be_bytes());
    assert_eq!(&bytes[..32], header.as_slice());
    assert!(bytes[32..512].iter().all(|&b| b == 0));
    let body: &[u8] = &[
        0, 0, 0, 2, 0, 0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v', 1, 0, 0, 0, 1, b'd',
    ];
    let record = &bytes[512..1024];
    assert_eq!(&record[..4], &(body.len() as u32).to_be_bytes());
    assert_eq!(&record[8..16], &1u64.to_be_bytes());
    assert_eq!(&record[16..24], &1u64.to_be_bytes());
    assert_eq!(&record[24..24 + body.len()], body);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&record[..4]);
    crc.update(&record[8..24 + body.len()]);
    assert_eq!(&record[4..8], &crc.finalize().to_be_bytes());
    assert!(record[24 + body.len()..512].iter().all(|&b| b == 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever is appended comes back in order; cutting the file anywhere after the last
    /// complete record loses only the record being written, never reports damage.
    #[test]
    fn appends_replay_in_order_and_a_cut_loses_only_the_record_being_written(
        sizes in proptest::collection::vec(0usize..1500, 1..12),
        cut in 1u64..1500,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let commits: Owned = sizes.iter().enumerate().map(|(i, &len)| commit(i as u64 + 1, len)).collect();
        let (mut log, _) = WriteAheadLog::open(dir.path(), 0).unwrap();
        log.start().unwrap();
        let mut ends = Vec::new();
        for (number, writes) in &commits {
            log.append(*number, &ops_of(writes), true).unwrap();
            ends.push(log.end);
        }
        drop(log);
        let (_, recovered) = WriteAheadLog::open(dir.path(), 0).unwrap();
        prop_assert_eq!(replayed(&recovered), commits.clone());
        // Cut inside the last record.
        let path = dir.path().join(WAL_FILE);
        let before_last = ends.len().checked_sub(2).map_or(SECTOR, |i| ends[i]);
        // Anywhere in the record's head or body (its zero padding is not part of it).
        let bytes = std::fs::read(&path).unwrap();
        let at = before_last as usize;
        let body_len = u64::from(u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()));
        let record_end = before_last + RECORD_HEAD as u64 + body_len;
        let cut_at = before_last + cut % (record_end - before_last);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(cut_at).unwrap();
        drop(file);
        let (_, recovered) = WriteAheadLog::open(dir.path(), 0).unwrap();
        prop_assert_eq!(replayed(&recovered), commits[..commits.len() - 1].to_vec());
    }
}

#[test]
fn a_header_that_could_not_be_synced_stops_the_log_until_it_is_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = WriteAheadLog::open(dir.path(), 0).unwrap();
    log.start().unwrap();
    let (n, writes) = commit(1, 10);
    log.append(n, &ops_of(&writes), true).unwrap();
    // The file taken away: the next header cannot be written.
    log.file = Some(File::open(dir.path().join(WAL_FILE)).unwrap());
    assert!(log.checkpointed(1).is_err());
    let (n, writes) = commit(2, 10);
    let error = log.append(n, &ops_of(&writes), true).unwrap_err();
    assert!(error.to_string().contains("reopen the database"), "{error}");
}

#[test]
fn records_written_without_a_sync_are_synced_once_and_a_failed_sync_stops_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = WriteAheadLog::open(dir.path(), 0).unwrap();
    log.start().unwrap();
    assert_eq!(log.sync().unwrap(), None);
    for n in 1..=3 {
        let (n, writes) = commit(n, 10);
        log.append(n, &ops_of(&writes), false).unwrap();
    }
    assert_eq!(log.sync().unwrap(), Some(3));
    assert_eq!(log.sync().unwrap(), None, "nothing left to sync");
    let (n, writes) = commit(4, 10);
    log.append(n, &ops_of(&writes), false).unwrap();
    // The sync fails (a full disk), and record 4 may be lost.
    log.fail_next_sync = true;
    assert!(log.sync().is_err());
    let (n, writes) = commit(5, 10);
    let error = log.append(n, &ops_of(&writes), true).unwrap_err();
    assert!(error.to_string().contains("reopen the database"), "{error}");
}
