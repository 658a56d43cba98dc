//! A commit as one transaction in three round trips, whatever the batch's size:
//! (1) begin, lock the guarded keys' advisory locks in one order and read the keys;
//! (2) when the batch appends, lock its logs' head rows in one order and read where each
//! log ends; (3) move the heads, write the records, commit, and tell listening processes
//! that logs grew. Statements of one round trip are sent together (tokio-postgres
//! pipelines requests that are in flight at once).
//!
//! Each head row is checked against the end of its log's stored blocks, read in the same
//! round trip: a head row that disagrees (part of the schema restored from another time)
//! fails the commit as `Corrupted` instead of numbering events over stored ones; log
//! blocks are inserted, never overwritten, besides. A log without a head row (its first
//! append, or records copied in as stored by a migration) gets one at the end of its
//! stored blocks, one more round trip once.

use super::connection::{Connection, pg_error};
use crate::backend::log_block::head_count;
use crate::backend::{GuardFailed, Sequencer, WriteBatch, WriteOp, offset_of};
use crate::error::{Error, Result};
use futures_util::future::{try_join, try_join3, try_join5};
use std::collections::{BTreeMap, HashMap};

/// Where a commit tells other processes that it appended: `pg_notify(channel, payload)`.
pub(super) struct Notice<'a> {
    pub(super) channel: &'a str,
    pub(super) payload: &'a str,
}

/// Commits `batch`: durably (synchronous commit) or not. A failed guard, or an error,
/// leaves the connection outside any transaction.
pub(super) async fn commit(
    connection: &Connection,
    batch: &WriteBatch,
    durable: bool,
    notice: &Notice<'_>,
) -> Result<Result<(), GuardFailed>> {
    let outcome = steps(connection, batch, durable, notice).await;
    if !matches!(outcome, Ok(Ok(()))) {
        // Without a transaction open (it committed, or the connection is gone), this
        // does nothing harmful.
        let _ = connection.client.batch_execute("ROLLBACK").await;
    }
    outcome
}

fn err(e: tokio_postgres::Error) -> Error {
    pg_error("write batch", &e)
}

async fn steps(
    connection: &Connection,
    batch: &WriteBatch,
    durable: bool,
    notice: &Notice<'_>,
) -> Result<Result<(), GuardFailed>> {
    let Connection { client, statements } = connection;
    let begin = if durable {
        "BEGIN; SET LOCAL synchronous_commit = on"
    } else {
        "BEGIN; SET LOCAL synchronous_commit = off"
    };
    // (1) Guarded keys are locked for the transaction, in one order, so that two
    // processes checking the same free slot take turns; then read.
    let mut locks: Vec<i64> = batch.guards.iter().map(|g| lock_id(&g.key)).collect();
    locks.sort_unstable();
    locks.dedup();
    let keys: Vec<&[u8]> = batch.guards.iter().map(|g| g.key.as_slice()).collect();
    let (_, _, rows) = try_join3(
        async { client.batch_execute(begin).await.map_err(err) },
        async {
            if locks.is_empty() {
                return Ok(0);
            }
            client
                .execute(&statements.lock_keys, &[&locks])
                .await
                .map_err(err)
        },
        async {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            client
                .query(&statements.read_keys, &[&keys])
                .await
                .map_err(err)
        },
    )
    .await?;
    let mut current: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(rows.len());
    for row in rows {
        current.insert(row.try_get(0).map_err(err)?, row.try_get(1).map_err(err)?);
    }
    for (index, guard) in batch.guards.iter().enumerate() {
        let actual = current.get(&guard.key);
        if actual != guard.expected.as_ref() {
            return Ok(Err(GuardFailed {
                index,
                actual: actual.cloned(),
            }));
        }
    }
    // (2) Each log's head row moves by its appends; its row lock orders the commits.
    let mut counts: BTreeMap<&[u8], i64> = BTreeMap::new();
    for append in &batch.appends {
        *counts.entry(append.log.as_slice()).or_insert(0) += 1;
    }
    let logs: Vec<&[u8]> = counts.keys().copied().collect();
    let mut ends: HashMap<&[u8], u64> = HashMap::with_capacity(logs.len());
    if !logs.is_empty() {
        let afters: Vec<Vec<u8>> = logs
            .iter()
            .map(|log| crate::keys::prefix_end(log))
            .collect();
        let (mut heads, mut stored_ends) = heads_and_ends(connection, &logs, &afters).await?;
        if heads.len() < logs.len() {
            create_heads(connection, &logs, &heads, &stored_ends).await?;
            // Another process may have created a head row first and appended since: read
            // both again, under the row locks now taken.
            (heads, stored_ends) = heads_and_ends(connection, &logs, &afters).await?;
        }
        for (log, last) in &heads {
            let (log, last) = (log.as_slice(), *last);
            let stored = stored_ends.get(log).copied().unwrap_or(0);
            if u64::try_from(last).ok() != Some(stored) {
                return Err(Error::Corrupted {
                    record: format!("the head row of collection log {log:?}"),
                    reason: format!(
                        "it says offset {last}, the log's stored blocks end at {stored} \
                         (was part of the schema restored from another time?); nothing \
                         was written"
                    ),
                });
            }
            if let Some((log, _)) = counts.get_key_value(log) {
                ends.insert(log, stored);
            }
        }
    }
    let assigned = Sequencer::default().assign(&batch.appends, |log| {
        ends.get(log)
            .copied()
            .ok_or_else(|| Error::storage("assign offsets", "a log without a head row"))
    })?;
    let mut lasts = Vec::with_capacity(logs.len());
    for (log, n) in &counts {
        let end = ends.get(log).copied().unwrap_or(0);
        let last = i64::try_from(end)
            .ok()
            .and_then(|end| end.checked_add(*n))
            .ok_or_else(|| Error::storage("assign offsets", "a log's offsets overflow"))?;
        lasts.push(last);
    }
    // (3) The last write to a key wins.
    let mut writes: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
    for op in &batch.ops {
        match op {
            WriteOp::Put { key, value } => writes.insert(key, Some(value)),
            WriteOp::Delete { key } => writes.insert(key, None),
        };
    }
    let (block_keys, blocks): (Vec<&[u8]>, Vec<&[u8]>) = assigned
        .blocks
        .iter()
        .map(|(key, block)| (key.as_slice(), block.as_slice()))
        .unzip();
    for key in &block_keys {
        writes.remove(key);
    }
    let (mut put_keys, mut put_values, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in writes {
        match value {
            Some(value) => {
                put_keys.push(key);
                put_values.push(value);
            }
            None => deletes.push(key),
        }
    }
    let blocks_inserted = async {
        if block_keys.is_empty() {
            return Ok(0);
        }
        client
            .execute(&statements.put_new, &[&block_keys, &blocks])
            .await
            .map_err(|e| match e.code() {
                Some(code) if *code == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
                    Error::Corrupted {
                        record: "a collection log's head row".into(),
                        reason: "it is behind the log's stored blocks (was part of the \
                                 schema restored?); nothing was written"
                            .into(),
                    }
                }
                _ => err(e),
            })
    };
    try_join(
        blocks_inserted,
        try_join5(
            async {
                if logs.is_empty() {
                    return Ok(0);
                }
                client
                    .execute(&statements.move_heads, &[&logs, &lasts])
                    .await
                    .map_err(err)
            },
            async {
                if put_keys.is_empty() {
                    return Ok(0);
                }
                client
                    .execute(&statements.put, &[&put_keys, &put_values])
                    .await
                    .map_err(err)
            },
            async {
                if deletes.is_empty() {
                    return Ok(0);
                }
                client
                    .execute(&statements.delete, &[&deletes])
                    .await
                    .map_err(err)
            },
            async { client.batch_execute("COMMIT").await.map_err(err) },
            async {
                if logs.is_empty() {
                    return Ok(0);
                }
                // After the commit, outside it (a NOTIFY inside would serialise every
                // appending transaction on the server's notify lock). A lost one costs a
                // listener one poll interval.
                client
                    .execute(&statements.notify, &[&notice.channel, &notice.payload])
                    .await
                    .map_err(err)
            },
        ),
    )
    .await?;
    Ok(Ok(()))
}

/// Each of `logs`' head row (locked for the transaction, in log order), and where its
/// stored blocks end, in one round trip (`afters`: the key bound after each log).
async fn heads_and_ends(
    connection: &Connection,
    logs: &[&[u8]],
    afters: &[Vec<u8>],
) -> Result<(Vec<(Vec<u8>, i64)>, HashMap<Vec<u8>, u64>)> {
    let Connection { client, statements } = connection;
    let (heads, stored) = try_join(
        async {
            client
                .query(&statements.lock_heads, &[&logs])
                .await
                .map_err(err)
        },
        async {
            client
                .query(&statements.log_ends, &[&logs, &afters])
                .await
                .map_err(err)
        },
    )
    .await?;
    let mut locked = Vec::with_capacity(heads.len());
    for row in &heads {
        locked.push((row.try_get(0).map_err(err)?, row.try_get(1).map_err(err)?));
    }
    let mut ends = HashMap::with_capacity(stored.len());
    for row in &stored {
        let log: &[u8] = row.try_get(0).map_err(err)?;
        let key: Option<&[u8]> = row.try_get(1).map_err(err)?;
        let head: Option<&[u8]> = row.try_get(2).map_err(err)?;
        ends.insert(log.to_vec(), stored_end(log, key, head)?);
    }
    Ok((locked, ends))
}

/// The last offset of a log whose last block is at `key` and begins with `head` (its
/// version byte and entry count, in the first
/// [`BLOCK_HEAD_LEN`](crate::backend::log_block::BLOCK_HEAD_LEN) bytes); 0 for a log with
/// no block.
fn stored_end(log: &[u8], key: Option<&[u8]>, head: Option<&[u8]>) -> Result<u64> {
    let Some(key) = key else {
        return Ok(0);
    };
    let corrupted = || Error::Corrupted {
        record: format!("log block {key:?}"),
        reason: "malformed key or block".into(),
    };
    let first = offset_of(log, key).ok_or_else(corrupted)?;
    let count = head.and_then(head_count).ok_or_else(corrupted)?;
    first
        .checked_add(count.saturating_sub(1))
        .ok_or_else(corrupted)
}

/// Gives each of `logs` that has no row in `heads` a head row at the end of its stored
/// blocks. Another process racing to do the same computes the same end: a log gets
/// blocks only by commits that hold its head row.
async fn create_heads(
    connection: &Connection,
    logs: &[&[u8]],
    heads: &[(Vec<u8>, i64)],
    stored_ends: &HashMap<Vec<u8>, u64>,
) -> Result<()> {
    let Connection { client, statements } = connection;
    let (mut missing, mut ends) = (Vec::new(), Vec::new());
    for log in logs {
        if heads.iter().any(|(present, _)| present.as_slice() == *log) {
            continue;
        }
        let end = stored_ends.get(*log).copied().unwrap_or(0);
        missing.push(*log);
        ends.push(i64::try_from(end).map_err(|_| Error::Corrupted {
            record: format!("the stored blocks of log {log:?}"),
            reason: format!("offset {end} is out of range"),
        })?);
    }
    client
        .execute(&statements.create_heads, &[&missing, &ends])
        .await
        .map_err(err)?;
    Ok(())
}

/// The advisory lock of a guarded key (a collision only makes two keys take turns).
fn lock_id(key: &[u8]) -> i64 {
    let mut hasher = crc32fast::Hasher::new_with_initial(0x5255_5348);
    hasher.update(key);
    let high = i64::from(hasher.finalize());
    let low = i64::from(crc32fast::hash(key));
    (high << 32) ^ low
}
