//! actor_bench's baseline: raw sled writing groups of events with flush + fsync, what the
//! journal's group commit does with none of Rush around it.

use super::bank::account_id;
use super::measure::{cpu_sample, other_cpu, percentile};
use super::{MEASURE, WARMUP, record_key, sled_config};
use std::fs::File;
use std::time::{Duration, Instant};

pub(crate) struct RawRow {
    pub(crate) rate: f64,
    pub(crate) other_cpu: f64,
    pub(crate) group_p50: Duration,
    pub(crate) group_p99: Duration,
    /// This process's CPU time (every thread, sled's own included) from the start of the
    /// measured window to the end of the run, and the events written meanwhile.
    pub(crate) cpu: Duration,
    pub(crate) cpu_events: u64,
}

/// For concurrency `n`: one batch of `n` event inserts per group, then `flush` + fsync of
/// the `db` file. With `like_ours`, each member also checks that its slot is free (the
/// append guard; the deletion-mark guard is answered from a cache) and the group adds one
/// collection-log block of `n` small entries, as rush-store's journal append does.
pub(crate) fn raw_row(n: usize, value_len: usize, like_ours: bool) -> RawRow {
    let dir = tempfile::tempdir().unwrap();
    let db = sled_config(dir.path()).open().unwrap();
    let db_file = File::open(dir.path().join("db")).unwrap();
    let value: Vec<u8> = (0..value_len).map(|i| (i * 31 + 7) as u8).collect();
    let ids: Vec<String> = (0..n).map(account_id).collect();
    let mut log_key = vec![5u8];
    log_key.extend_from_slice(&8u16.to_be_bytes());
    log_key.extend_from_slice(b"accounts");

    let begin = Instant::now();
    let measure_from = begin + WARMUP;
    let measure_to = measure_from + MEASURE;
    let mut seq = 0u64;
    let mut events = 0u64;
    let mut groups = Vec::new();
    let mut cpu_from = None;
    let mut cpu_events = 0u64;
    loop {
        let started = Instant::now();
        if started >= measure_to {
            break;
        }
        if cpu_from.is_none() && started >= measure_from {
            cpu_from = Some(cpu_sample());
        }
        seq += 1;
        let mut batch = sled::Batch::default();
        let mut block = Vec::with_capacity(5 + n * 40);
        block.push(1u8);
        block.extend_from_slice(&(n as u32).to_be_bytes());
        for id in &ids {
            let key = record_key(1, id, Some(seq));
            if like_ours {
                assert!(db.get(&key).unwrap().is_none(), "free slot");
                let entry_len = 17 + id.len();
                block.extend_from_slice(&(entry_len as u32).to_be_bytes());
                block.push(1);
                block.extend_from_slice(&seq.to_be_bytes());
                block.extend_from_slice(&seq.to_be_bytes());
                block.extend_from_slice(id.as_bytes());
            }
            batch.insert(key, value.as_slice());
        }
        if like_ours {
            let mut key = log_key.clone();
            key.extend_from_slice(&(seq * n as u64).to_be_bytes());
            let mut crc = crc32fast::Hasher::new();
            crc.update(&key);
            crc.update(&block);
            block.extend_from_slice(&crc.finalize().to_be_bytes());
            batch.insert(key, block);
        }
        db.apply_batch(batch).unwrap();
        db.flush().unwrap();
        db_file.sync_data().unwrap();
        let done = Instant::now();
        if cpu_from.is_some() {
            cpu_events += n as u64;
        }
        if done >= measure_from && done <= measure_to {
            events += n as u64;
            groups.push(done - started);
        }
    }
    let cpu_to = cpu_sample();
    groups.sort_unstable();
    drop(db_file);
    drop(db);
    drop(dir);
    RawRow {
        other_cpu: cpu_from.map_or(0.0, |from| other_cpu(from, cpu_to)),
        cpu: cpu_from.map_or(Duration::ZERO, |from| cpu_to.own.saturating_sub(from.own)),
        cpu_events,
        rate: events as f64 / MEASURE.as_secs_f64(),
        group_p50: percentile(&groups, 0.50),
        group_p99: percentile(&groups, 0.99),
    }
}

/// sled's insert alone, the floor under any write path on it: rounds of one event for
/// each of `n` entities, `Tree::insert` key by key (what the write-ahead log's apply
/// does), no flush, no fsync. Returns this process's CPU time over the measured window
/// (sled's threads included) and the inserts made meanwhile.
pub(crate) fn raw_inserts(n: usize, value_len: usize) -> (Duration, u64) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled_config(dir.path()).open().unwrap();
    let value: Vec<u8> = (0..value_len).map(|i| (i * 31 + 7) as u8).collect();
    let ids: Vec<String> = (0..n).map(account_id).collect();
    let measure_from = Instant::now() + WARMUP;
    let measure_to = measure_from + MEASURE;
    let mut cpu_from = None;
    let mut inserts = 0u64;
    let mut seq = 0u64;
    while Instant::now() < measure_to {
        if cpu_from.is_none() && Instant::now() >= measure_from {
            cpu_from = Some(cpu_sample());
        }
        seq += 1;
        for id in &ids {
            db.insert(record_key(1, id, Some(seq)), value.as_slice())
                .unwrap();
        }
        if cpu_from.is_some() {
            inserts += n as u64;
        }
    }
    let cpu = cpu_from.map_or(Duration::ZERO, |from| {
        cpu_sample().own.saturating_sub(from.own)
    });
    drop(db);
    drop(dir);
    (cpu, inserts)
}
