//! The engine the suites run on, chosen by `RUSH_TEST_ENGINE` (`memory`, `sled` or
//! `redb`), so that one harness runs every store, actor, projection, saga, crash and fault
//! suite on each engine (`.ci/run` runs them three times). Unset, a test keeps its own
//! choice: memory where it asked for a fresh database, sled where it asked for a folder.
//! The actor tests include this file too, so it depends only on `rush_store` and
//! `tempfile`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rush_store::{
    Backend, Confirmation, Durable, GuardFailed, MemoryManager, RedbManager, Result, SledManager,
    Visitor, WriteBatch,
};
use std::path::Path;
use std::sync::Arc;

/// The engine `RUSH_TEST_ENGINE` names, if any.
pub fn chosen() -> Option<&'static str> {
    match std::env::var("RUSH_TEST_ENGINE").as_deref() {
        Ok("memory") => Some("memory"),
        Ok("sled") => Some("sled"),
        Ok("redb") => Some("redb"),
        Ok("") | Err(_) => None,
        Ok(other) => panic!("RUSH_TEST_ENGINE={other}: use memory, sled or redb"),
    }
}

/// A database on the engine under test, in `folder` (sled unless redb is chosen: memory
/// cannot be reopened from a folder).
pub fn at(folder: impl AsRef<Path>) -> Arc<dyn Backend> {
    try_at(folder).unwrap()
}

/// [`at`], for tests that expect the open to fail.
pub fn try_at(folder: impl AsRef<Path>) -> Result<Arc<dyn Backend>> {
    let folder = folder.as_ref();
    Ok(match chosen() {
        Some("redb") => Arc::new(RedbManager::new(folder)?),
        _ => Arc::new(SledManager::new(folder)?),
    })
}

/// The file the engine under [`at`] locks while a process has the folder open.
pub fn locked_file(folder: impl AsRef<Path>) -> std::path::PathBuf {
    match chosen() {
        Some("redb") => folder.as_ref().join("rush.redb"),
        _ => folder.as_ref().join("db"),
    }
}

/// A fresh database on the engine under test (memory unless another is chosen). Clones
/// share it, as clones of a `MemoryManager` do; its folder lives as long as they do.
pub fn fresh() -> TestEngine {
    match chosen() {
        None | Some("memory") => TestEngine {
            engine: Arc::new(MemoryManager::default()),
            _folder: None,
        },
        Some(_) => {
            let folder = tempfile::tempdir().unwrap();
            TestEngine {
                engine: at(folder.path()),
                _folder: Some(Arc::new(folder)),
            }
        }
    }
}

/// A database of [`fresh`]: the engine and, for a file engine, its folder.
#[derive(Debug, Clone)]
pub struct TestEngine {
    engine: Arc<dyn Backend>,
    _folder: Option<Arc<tempfile::TempDir>>,
}

impl Backend for TestEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.engine.get(key)
    }
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.engine.scan(start, end, limit, reverse)
    }
    fn visit_range(&self, start: &[u8], end: &[u8], visit: &mut Visitor<'_>) -> Result<()> {
        self.engine.visit_range(start, end, visit)
    }
    fn commit(&self, batch: &WriteBatch) -> Result<std::result::Result<(), GuardFailed>> {
        self.engine.commit(batch)
    }
    fn flush(&self) -> Result<()> {
        self.engine.flush()
    }
    fn flush_deferred(&self) -> Result<Option<Confirmation>> {
        self.engine.flush_deferred()
    }
    fn commit_durable(&self, batch: &WriteBatch) -> Result<Durable> {
        self.engine.commit_durable(batch)
    }
    fn size_on_disk(&self) -> Result<u64> {
        self.engine.size_on_disk()
    }
    fn copy_files_to(&self, dest: &Path) -> Result<u64> {
        self.engine.copy_files_to(dest)
    }
    fn identity(&self) -> usize {
        self.engine.identity()
    }
}
