//! Configuration of the persistence extension.

use crate::snapshot_policy::SnapshotPolicy;
use crate::supervision::RestartPolicy;
use rush_store::{CompressionConfig, Durability};
use std::time::Duration;

/// A 32-byte encryption key, zeroized on drop and never printed.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// The key bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<[u8; 32]> for SecretKey {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// How the persistence extension runs its actors.
#[derive(Clone)]
pub struct PersistenceConfig {
    /// Default snapshot policy (an actor type can override it).
    pub snapshots: SnapshotPolicy,
    /// 32-byte key: every event and snapshot is encrypted with XChaCha20-Poly1305.
    pub encryption_key: Option<SecretKey>,
    /// Adaptive gzip of records (`None`: off).
    pub compression: Option<CompressionConfig>,
    /// When a persist is acknowledged (default: on disk).
    pub durability: Durability,
    /// Restarts after failures.
    pub restart: RestartPolicy,
    /// At most this many actors recover at once (a restart of thousands must not stall);
    /// 0 counts as 1, and any count beyond what a semaphore holds as that maximum.
    pub max_concurrent_recoveries: usize,
    /// Commands waiting for one actor (including during its recovery) beyond this are
    /// refused with `Error::Overloaded`.
    pub max_pending_commands: usize,
    /// Stop an actor idle this long; the next command starts it again from the journal.
    pub passivate_after: Option<Duration>,
    /// How long `ask` waits for a reply (and for a restarting actor), `get_or_spawn` for a
    /// recovery, and `shutdown` for the actors to finish their mailboxes. Any value works:
    /// `Duration::MAX` waits about 30 years.
    pub ask_timeout: Duration,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self {
            snapshots: SnapshotPolicy::default(),
            encryption_key: None,
            compression: Some(CompressionConfig::default()),
            durability: Durability::Immediate,
            restart: RestartPolicy::default(),
            max_concurrent_recoveries: 16,
            max_pending_commands: 4096,
            passivate_after: None,
            ask_timeout: Duration::from_secs(10),
        }
    }
}

/// The instant `timeout` from now; a timeout past the clock's range (`Duration::MAX`)
/// gives a deadline about 30 years away instead of overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

impl PersistenceConfig {
    /// Opens the store of one entity with this configuration.
    pub(crate) fn open_store<S: rush_store::PersistentActor>(
        &self,
        collection: &str,
        entity_id: &str,
        backend: std::sync::Arc<dyn rush_store::Backend>,
    ) -> rush_store::Result<rush_store::Store<S>> {
        let key = self.encryption_key.as_ref().map(SecretKey::bytes);
        let mut store = rush_store::Store::with_backend(
            collection,
            entity_id,
            backend,
            key,
            self.compression.is_some(),
        )?;
        if let Some(compression) = self.compression {
            store.set_compression_config(compression)?;
        }
        store.set_durability(self.durability);
        Ok(store)
    }
}

impl std::fmt::Debug for PersistenceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistenceConfig")
            .field("snapshots", &self.snapshots)
            .field("encrypted", &self.encryption_key.is_some())
            .field("compression", &self.compression)
            .field("durability", &self.durability)
            .field("restart", &self.restart)
            .field("max_concurrent_recoveries", &self.max_concurrent_recoveries)
            .field("max_pending_commands", &self.max_pending_commands)
            .field("passivate_after", &self.passivate_after)
            .field("ask_timeout", &self.ask_timeout)
            .finish()
    }
}
