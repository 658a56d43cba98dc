//! The engine the suites run on, chosen by `RUSH_TEST_ENGINE` (`memory`, `sled` (sled
//! without its write-ahead log), `sled-wal` (sled with it, as it opens by default), `redb`
//! or `postgres`), so that one harness runs every store, actor, projection, saga, crash and
//! fault suite on each engine (`.ci/run` runs them five times). Unset, a test keeps its
//! own choice: memory where it asked for a fresh database, sled as it opens by default
//! where it asked for a folder.
//!
//! On `postgres`, one throwaway server serves the whole test process (or the one
//! `RUSH_TEST_POSTGRES_URL` names); a fresh database is a new schema, and a folder is the
//! schema named after its path, so reopening a folder, in this process or in a child
//! given [`child_env`], reopens the same journal. Tests about an engine's own files
//! ([`is_file_engine`]) do not apply there.
//!
//! The actor tests include this file too, so it depends only on `rush_store` and
//! `tempfile`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "postgres_server.rs"]
mod postgres_server;

use rush_store::{
    Backend, Confirmation, Durable, GuardFailed, MemoryManager, PostgresManager, RedbManager,
    Result, SledConfig, SledManager, Visitor, WriteBatch,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The engine `RUSH_TEST_ENGINE` names, if any.
pub fn chosen() -> Option<&'static str> {
    match std::env::var("RUSH_TEST_ENGINE").as_deref() {
        Ok("memory") => Some("memory"),
        Ok("sled") => Some("sled"),
        Ok("sled-wal") => Some("sled-wal"),
        Ok("redb") => Some("redb"),
        Ok("postgres") => Some("postgres"),
        Ok("") | Err(_) => None,
        Ok(other) => {
            panic!("RUSH_TEST_ENGINE={other}: use memory, sled, sled-wal, redb or postgres")
        }
    }
}

/// Whether the engine under test keeps its data in files of the test's folder (a test
/// about locked, damaged or copied files does not apply to a server).
pub fn is_file_engine() -> bool {
    chosen() != Some("postgres")
}

/// The PostgreSQL server of the suites on `postgres` (panics with the reason when none can
/// run: choosing `postgres` asks for one).
fn server_url() -> &'static str {
    match postgres_server::shared() {
        Some(server) => &server.url,
        None => panic!("RUSH_TEST_ENGINE=postgres, but no PostgreSQL server can run here"),
    }
}

/// Environment a child process of the test needs to reach the same databases.
pub fn child_env() -> Vec<(String, String)> {
    match chosen() {
        Some("postgres") => vec![("RUSH_TEST_POSTGRES_URL".into(), server_url().into())],
        _ => Vec::new(),
    }
}

/// The schema standing for `folder` on PostgreSQL: named after its path.
fn schema_of(folder: &Path) -> String {
    let text = folder.to_string_lossy();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("folder_{hash:016x}")
}

/// A schema no other test of any process uses.
fn new_schema() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "fresh_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `work` on a thread of its own: a test that calls an engine directly from async
/// code does it there, as the database core does (the PostgreSQL engine refuses to block a
/// tokio worker).
pub fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().unwrap())
}

/// A new, empty PostgreSQL schema of the server under test, and its name (for
/// [`postgres_at`]).
pub fn postgres_fresh() -> (Arc<dyn Backend>, String) {
    let schema = new_schema();
    (Arc::new(connect(schema.clone()).unwrap()), schema)
}

/// The PostgreSQL schema `schema` of the server under test, connected again.
pub fn postgres_at(schema: &str) -> Arc<dyn Backend> {
    Arc::new(connect(schema.to_owned()).unwrap())
}

/// Connects to `schema` of the server under test (on a tokio worker too: the engine runs
/// the call on a thread of its own there).
fn connect(schema: String) -> Result<PostgresManager> {
    PostgresManager::connect(server_url(), &schema)
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
        Some("postgres") => Arc::new(connect(schema_of(folder))?),
        Some("sled") => Arc::new(SledManager::with_config(folder, sled_without_log())?),
        Some("sled-wal") => Arc::new(SledManager::with_config(folder, sled_wal())?),
        _ => Arc::new(SledManager::new(folder)?),
    })
}

/// sled without its write-ahead log, as `sled` opens it.
pub fn sled_without_log() -> SledConfig {
    SledConfig {
        write_ahead_log: false,
        ..SledConfig::default()
    }
}

/// sled with its write-ahead log, as `sled-wal` opens it (and the default does).
pub fn sled_wal() -> SledConfig {
    SledConfig {
        write_ahead_log: true,
        ..SledConfig::default()
    }
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
        Some("postgres") => TestEngine {
            engine: Arc::new(connect(new_schema()).unwrap()),
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
    fn appended_elsewhere(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.engine.appended_elsewhere()
    }
    fn identity(&self) -> usize {
        self.engine.identity()
    }
}
