//! The engine contract (`rush_store::conformance`) on every engine, and on an engine
//! written outside rush-store with the public `engine_kit`, as another crate would.
#![allow(clippy::panic)]

#[path = "../rush-store/tests/support/postgres_server.rs"]
mod postgres_server;

use rush_store::conformance::{self, EngineUnderTest};
use rush_store::engine_kit::{Sequencer, block_end, clamp_end, refuse_reserved};
use rush_store::{
    Backend, GuardFailed, MemoryManager, PostgresManager, RedbManager, Result, SledConfig,
    SledManager, WriteBatch, WriteOp,
};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

fn run(engine: &EngineUnderTest) {
    match conformance::check(engine) {
        Ok(report) => eprintln!("{}:\n{report}", engine.name),
        Err(violation) => panic!("{} breaks the engine contract: {violation}", engine.name),
    }
}

#[test]
fn memory_keeps_the_engine_contract() {
    run(&EngineUnderTest::in_memory("memory", |_| {
        Ok(Arc::new(MemoryManager::default()) as Arc<dyn Backend>)
    }));
}

#[test]
fn sled_without_its_write_ahead_log_keeps_the_engine_contract() {
    run(&EngineUnderTest::on_disk("sled", |folder| {
        let config = SledConfig {
            write_ahead_log: false,
            ..SledConfig::default()
        };
        Ok(Arc::new(SledManager::with_config(folder, config)?) as Arc<dyn Backend>)
    }));
}

/// sled as it opens by default: with its write-ahead log.
#[test]
fn sled_with_its_write_ahead_log_keeps_the_engine_contract() {
    run(&EngineUnderTest::on_disk("sled-wal", |folder| {
        Ok(Arc::new(SledManager::new(folder)?) as Arc<dyn Backend>)
    }));
}

/// The same with a checkpoint every 4 KiB of log (about every eight commits), so that
/// the SIGKILL check and the damage matrix meet checkpoints midway.
#[test]
fn sled_with_a_log_checkpointed_all_the_time_keeps_the_engine_contract() {
    run(&EngineUnderTest::on_disk("sled-wal-4k", |folder| {
        let config = SledConfig {
            write_ahead_log: true,
            checkpoint_bytes: 4096,
            ..SledConfig::default()
        };
        Ok(Arc::new(SledManager::with_config(folder, config)?) as Arc<dyn Backend>)
    }));
}

#[test]
fn redb_keeps_the_engine_contract() {
    run(&EngineUnderTest::on_disk("redb", |folder| {
        Ok(Arc::new(RedbManager::new(folder)?) as Arc<dyn Backend>)
    }));
}

/// PostgreSQL on a throwaway server (or `RUSH_TEST_POSTGRES_URL`): each folder the kit
/// opens is a schema of its own; the crash check's child reaches the same server.
#[test]
fn postgres_keeps_the_engine_contract() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let url = server.url.clone();
    let engine = EngineUnderTest::on_server("postgres", move |folder| {
        let path = folder.to_string_lossy();
        let schema = format!("t_{:08x}_{}", crc32(path.as_bytes()), path.len());
        Ok(Arc::new(PostgresManager::connect(&url, &schema)?) as Arc<dyn Backend>)
    })
    .with_child_env("RUSH_TEST_POSTGRES_URL", &server.url);
    run(&engine);
}

/// A short, stable name for a folder (CRC-32, the bitwise way: no table, no dependency).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// An engine as another crate would write it: a map under a lock, with offsets from the
/// kit's `Sequencer` and the kit's reserved-key rules.
#[derive(Debug, Default)]
struct External {
    state: Mutex<State>,
}

/// The data and the log offsets, under one lock.
type State = (BTreeMap<Vec<u8>, Vec<u8>>, Sequencer);

impl External {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| rush_store::Error::InvalidArgument("poisoned".into()))
    }
}

impl Backend for External {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if rush_store::engine_kit::is_reserved(key) {
            return Ok(None);
        }
        Ok(self.lock()?.0.get(key).cloned())
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = clamp_end(end);
        if start >= end {
            return Ok(Vec::new());
        }
        let state = self.lock()?;
        let range = state
            .0
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)));
        let pair = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(if reverse {
            range.rev().take(limit).map(pair).collect()
        } else {
            range.take(limit).map(pair).collect()
        })
    }

    fn commit(&self, batch: &WriteBatch) -> Result<std::result::Result<(), GuardFailed>> {
        refuse_reserved(batch)?;
        let mut state = self.lock()?;
        let (data, sequencer) = &mut *state;
        for (index, guard) in batch.guards.iter().enumerate() {
            let actual = data.get(&guard.key);
            if actual != guard.expected.as_ref() {
                return Ok(Err(GuardFailed {
                    index,
                    actual: actual.cloned(),
                }));
            }
        }
        let assigned = sequencer.assign(&batch.appends, |log| {
            let mut end = log.to_vec();
            end.push(0xFF);
            match data
                .range::<[u8], _>((Bound::Included(log), Bound::Excluded(end.as_slice())))
                .next_back()
            {
                Some((key, block)) => block_end(log, key, block),
                None => Ok(0),
            }
        })?;
        for op in &batch.ops {
            match op {
                WriteOp::Put { key, value } => data.insert(key.clone(), value.clone()),
                WriteOp::Delete { key } => data.remove(key),
            };
        }
        for (key, block) in &assigned.blocks {
            data.insert(key.clone(), block.clone());
        }
        sequencer.committed(assigned);
        Ok(Ok(()))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(0)
    }
}

#[test]
fn an_engine_from_another_crate_keeps_the_contract_with_the_kit() {
    run(&EngineUnderTest::in_memory("external", |_| {
        Ok(Arc::new(External::default()) as Arc<dyn Backend>)
    }));
}
