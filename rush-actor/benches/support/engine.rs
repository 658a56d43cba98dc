//! The engines the benchmarks and `perf_report` put side by side: each engine kind as it
//! opens by default (sled with its write-ahead log), and sled without the log
//! (`SledConfig::write_ahead_log` off, the default before 2026-12-05). Included by path where
//! it is used, so that both measure the same configurations.

use rush_store::{Backend, EngineKind, SledConfig, SledManager};
use std::path::Path;
use std::sync::Arc;

/// One engine configuration of a benchmark row or report column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Kind(EngineKind),
    SledNoLog,
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
        }
    }

    /// The column or row label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kind(kind) => kind.name(),
            Self::SledNoLog => "sled-nolog",
        }
    }
}
