//! The engines the benchmarks and `perf_report` put side by side: each engine kind as it
//! opens by default (sled with its write-ahead log), and sled without the log
//! (`SledConfig::write_ahead_log` off, the default before 2026-12-05). Included by path where
//! it is used, so that both measure the same configurations.

use rush_store::{Backend, EngineKind, GuardFailed, SledConfig, SledManager, WriteBatch};
use std::path::Path;
use std::sync::Arc;

/// One engine configuration of a benchmark row or report column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Kind(EngineKind),
    SledNoLog,
    /// [`Discard`]: Rush without an engine (actor_bench's floor rows only).
    #[allow(dead_code)]
    Discard,
}

impl Engine {
    pub const SLED: Self = Self::Kind(EngineKind::Sled);
    pub const REDB: Self = Self::Kind(EngineKind::Redb);

    /// Opens (or creates) this engine's database in `dir` with a page cache of `cache`
    /// bytes.
    pub fn open(self, dir: &Path, cache: u64) -> rush_store::Result<Arc<dyn Backend>> {
        match self {
            Self::Kind(kind) => kind.open(dir, cache),
            Self::SledNoLog => {
                let config = SledConfig {
                    cache_capacity: cache,
                    write_ahead_log: false,
                    ..SledConfig::default()
                };
                Ok(Arc::new(SledManager::with_config(dir, config)?))
            }
            Self::Discard => Ok(Arc::new(Discard)),
        }
    }

    /// The column or row label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kind(kind) => kind.name(),
            Self::SledNoLog => "sled-nolog",
            Self::Discard => "none",
        }
    }
}

/// An engine that accepts every batch and keeps nothing: what Rush's own path costs per
/// command (actors, encoding, the writer's bookkeeping) with no engine under it. Only
/// for the benchmark's floor rows: guards always pass, and reads find nothing.
#[derive(Debug)]
pub struct Discard;

impl Backend for Discard {
    fn get(&self, _key: &[u8]) -> rush_store::Result<Option<Vec<u8>>> {
        Ok(None)
    }

    fn scan(
        &self,
        _start: &[u8],
        _end: &[u8],
        _limit: usize,
        _reverse: bool,
    ) -> rush_store::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(Vec::new())
    }

    fn commit(&self, _batch: &WriteBatch) -> rush_store::Result<Result<(), GuardFailed>> {
        Ok(Ok(()))
    }

    fn flush(&self) -> rush_store::Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> rush_store::Result<u64> {
        Ok(0)
    }
}
