use super::*;
use crate::backend::{MemoryManager, WriteBatch};

fn entries(backend: &MemoryManager, log: &[u8], from: u64) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for_each_entry(backend, log, from, &mut |entry| {
        out.push((entry.offset, entry.sequence_number));
        Ok(true)
    })?;
    Ok(out)
}

#[test]
fn entries_are_read_from_any_offset_across_blocks() -> Result<()> {
    let backend = MemoryManager::default();
    let key = EntityKey::new("accounts", "alice")?;
    for block in [1..=3u64, 4..=4, 5..=6] {
        let batch = WriteBatch {
            appends: block.map(|seq| append(&key, seq, 1)).collect(),
            ..WriteBatch::default()
        };
        backend
            .commit(&batch)?
            .map_err(|e| Error::storage("test", format!("{e:?}")))?;
    }
    let log = log_of("accounts")?;
    assert_eq!(highest_offset(&backend, &log)?, 6);
    assert_eq!(entries(&backend, &log, 0)?.len(), 6);
    assert_eq!(
        entries(&backend, &log, 2)?,
        vec![(2, 2), (3, 3), (4, 4), (5, 5), (6, 6)]
    );
    assert_eq!(entries(&backend, &log, 4)?, vec![(4, 4), (5, 5), (6, 6)]);
    assert_eq!(entries(&backend, &log, 6)?, vec![(6, 6)]);
    assert!(entries(&backend, &log, 7)?.is_empty());
    Ok(())
}

fn commit(backend: &MemoryManager, batch: &WriteBatch) -> Result<()> {
    backend
        .commit(batch)?
        .map_err(|e| Error::storage("test", format!("{e:?}")))
}

/// An entry as version-2 builds wrote it: `[0x01][timestamp u64][seq u64][entity id]`.
fn entry_v1(entity: &str, seq: u64, timestamp_micros: u64) -> Vec<u8> {
    let mut entry = vec![1];
    entry.extend_from_slice(&timestamp_micros.to_be_bytes());
    entry.extend_from_slice(&seq.to_be_bytes());
    entry.extend_from_slice(entity.as_bytes());
    entry
}

/// A block as version-2 builds wrote it: `[0x01][count u32]([len u32][entry])*[crc32]`,
/// the CRC over the key and the bytes before it.
fn block_v1(key: &[u8], entries: &[Vec<u8>]) -> Vec<u8> {
    let mut block = vec![1];
    block.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for entry in entries {
        block.extend_from_slice(&(entry.len() as u32).to_be_bytes());
        block.extend_from_slice(entry);
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(key);
    crc.update(&block);
    block.extend_from_slice(&crc.finalize().to_be_bytes());
    block
}

fn entry_v2(entity: &str, seq: u64, timestamp_micros: u64) -> Vec<u8> {
    append(
        &EntityKey::new("accounts", entity).unwrap(),
        seq,
        timestamp_micros,
    )
    .value
}

#[test]
fn a_log_of_v1_blocks_then_v2_blocks_reads_from_any_offset() -> Result<()> {
    let backend = MemoryManager::default();
    let log = log_of("accounts")?;
    // Offsets 1..=3 and 4..=5 in v1 blocks of v1 entries, as the previous build wrote them.
    let mut ops = Vec::new();
    for (first, seqs) in [(1u64, 1..=3u64), (4, 4..=5)] {
        let key = key_at(&log, first);
        let entries: Vec<Vec<u8>> = seqs.map(|seq| entry_v1("alice", seq, 100)).collect();
        let value = block_v1(&key, &entries);
        ops.push(crate::backend::WriteOp::Put { key, value });
    }
    commit(
        &backend,
        &WriteBatch {
            ops,
            ..WriteBatch::default()
        },
    )?;
    assert_eq!(highest_offset(&backend, &log)?, 5);
    // Offsets 6..=8 and 9 in v2 blocks, numbered after the v1 blocks by the backend.
    let alice = EntityKey::new("accounts", "alice")?;
    let bob = EntityKey::new("accounts", "bob")?;
    for appends in [
        vec![
            append(&alice, 6, 200),
            append(&bob, 1, 200),
            append(&alice, 7, 200),
        ],
        vec![append(&bob, 2, 300)],
    ] {
        commit(
            &backend,
            &WriteBatch {
                appends,
                ..WriteBatch::default()
            },
        )?;
    }
    let (key_v1, block) = backend.scan(&log, &prefix_end(&log), 1, false)?.remove(0);
    assert_eq!((key_v1, block[0]), (key_at(&log, 1), 1));
    let (key_v2, block) = backend.scan(&log, &prefix_end(&log), 1, true)?.remove(0);
    assert_eq!((key_v2, block[0]), (key_at(&log, 9), 2));
    assert_eq!(highest_offset(&backend, &log)?, 9);

    let expected = [
        (1, "alice", 1, 100),
        (2, "alice", 2, 100),
        (3, "alice", 3, 100),
        (4, "alice", 4, 100),
        (5, "alice", 5, 100),
        (6, "alice", 6, 200),
        (7, "bob", 1, 200),
        (8, "alice", 7, 200),
        (9, "bob", 2, 300),
    ];
    for from in 0..=10u64 {
        let mut read = Vec::new();
        for_each_entry(&backend, &log, from, &mut |entry| {
            read.push(entry);
            Ok(true)
        })?;
        let want: Vec<LogEntry> = expected
            .iter()
            .filter(|(offset, ..)| *offset >= from)
            .map(|&(offset, entity, seq, timestamp)| LogEntry {
                offset,
                timestamp_micros: timestamp,
                sequence_number: seq,
                entity_id: entity.to_owned(),
            })
            .collect();
        assert_eq!(read, want, "from {from}");
    }
    // A visit that stops stops, in either block version.
    for stop_after in [2usize, 7] {
        let mut seen = 0;
        for_each_entry(&backend, &log, 1, &mut |_| {
            seen += 1;
            Ok(seen < stop_after)
        })?;
        assert_eq!(seen, stop_after);
    }
    Ok(())
}

/// The bytes per entry of one block of `entries` (key, count and CRC included).
fn bytes_per_entry(entries: &[Vec<u8>]) -> Result<f64> {
    let log = log_of("accounts")?;
    let key = key_at(&log, 1);
    let values: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let block = crate::backend::log_block::encode_block(&key, &values);
    let entries_read = decode_block(&key, &block).map(|b| b.len());
    assert_eq!(entries_read, Some(entries.len()));
    Ok(block.len() as f64 / entries.len() as f64)
}

#[test]
fn a_block_of_one_entitys_events_costs_at_most_four_bytes_an_entry() -> Result<()> {
    let alice = EntityKey::new("accounts", "alice")?;
    let entries: Vec<Vec<u8>> = (1..=1000)
        .map(|seq| append(&alice, seq, 1_700_000_000_000_000).value)
        .collect();
    let per_entry = bytes_per_entry(&entries)?;
    assert!(per_entry <= 4.0, "{per_entry} bytes an entry");
    // From an entity's 20,000th event on, too (the seq's two low bytes change more often).
    let later: Vec<Vec<u8>> = (20_000..21_000)
        .map(|seq| append(&alice, seq, 1_700_000_000_000_000).value)
        .collect();
    let per_entry = bytes_per_entry(&later)?;
    assert!(per_entry <= 4.0, "{per_entry} bytes an entry");
    Ok(())
}

#[test]
fn a_block_of_a_thousand_entities_costs_less_than_v1() -> Result<()> {
    let entries: Vec<Vec<u8>> = (1..=1000)
        .map(|n| entry_v2(&format!("acct-{n:06}"), 1, 1_700_000_000_000_000))
        .collect();
    let per_entry = bytes_per_entry(&entries)?;
    // The timestamp comes first, then the entity, so an entry shares its version byte, the
    // commit's timestamp, its id length and the id's common start ("acct-000") with the
    // previous one; the id's last digits and the seq (11 bytes) follow the first byte that
    // differs. Version 1 cost 32.
    assert!(per_entry <= 13.5, "{per_entry} bytes an entry");
    let v1: Vec<Vec<u8>> = (1..=1000)
        .map(|n| entry_v1(&format!("acct-{n:06}"), 1, 1_700_000_000_000_000))
        .collect();
    let key = key_at(&log_of("accounts")?, 1);
    let v1_per_entry = block_v1(&key, &v1).len() as f64 / 1000.0;
    assert!(v1_per_entry >= 32.0, "{v1_per_entry}");
    Ok(())
}

#[test]
fn entries_of_both_versions_decode() -> Result<()> {
    for entry in [entry_v1("alice", 7, 1234), entry_v2("alice", 7, 1234)] {
        assert_eq!(
            decode_entry(b"k", 3, &entry)?,
            LogEntry {
                offset: 3,
                timestamp_micros: 1234,
                sequence_number: 7,
                entity_id: "alice".into(),
            }
        );
    }
    // v2: [0x02][timestamp][len u16][id][seq]
    let v2 = entry_v2("bob", 0x0102, 0x0a0b);
    assert_eq!(
        v2,
        [
            &[2][..],
            &[0, 0, 0, 0, 0, 0, 0x0a, 0x0b],
            &[0, 3],
            b"bob",
            &[0, 0, 0, 0, 0, 0, 0x01, 0x02]
        ]
        .concat()
    );
    let long = "é".repeat(256);
    assert_eq!(
        decode_entry(b"k", 1, &entry_v2(&long, 1, 1))?.entity_id,
        long
    );
    Ok(())
}

#[test]
fn malformed_entries_are_corrupted() {
    let v1 = entry_v1("alice", 7, 1234);
    let v2 = entry_v2("alice", 7, 1234);
    let mut v2_longer = v2.clone();
    v2_longer.push(0);
    // [2][timestamp 8][len u16 at 9..11][id from 11]
    let mut v2_id_too_long = v2.clone();
    v2_id_too_long[10] = 6;
    let mut v2_bad_utf8 = v2.clone();
    v2_bad_utf8[11] = 0xff;
    let mut v1_bad_utf8 = v1.clone();
    v1_bad_utf8[17] = 0xff;
    let mut other_version = v2.clone();
    other_version[0] = 3;
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("version 0".into(), vec![0; 30]),
        ("version 3".into(), other_version),
        ("v1 without an entity id".into(), v1[..17].to_vec()),
        ("v1 id not UTF-8".into(), v1_bad_utf8),
        ("v2 with a byte after the seq".into(), v2_longer),
        ("v2 id longer than said".into(), v2_id_too_long),
        ("v2 id not UTF-8".into(), v2_bad_utf8),
        (
            "v2 with an empty id".into(),
            [&[2][..], &[0; 8], &[0, 0], &[0; 8]].concat(),
        ),
    ];
    for len in 0..v1.len().min(17) {
        cases.push((format!("v1 cut at {len}"), v1[..len].to_vec()));
    }
    for len in 0..v2.len() {
        cases.push((format!("v2 cut at {len}"), v2[..len].to_vec()));
    }
    for (what, entry) in cases {
        assert!(
            matches!(decode_entry(b"k", 1, &entry), Err(Error::Corrupted { .. })),
            "{what}"
        );
    }
}
