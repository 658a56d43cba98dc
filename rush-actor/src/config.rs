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
    /// At most this many actors recover at once (a restart of thousands must not stall).
    pub max_concurrent_recoveries: usize,
    /// Commands waiting for one actor (including during its recovery) beyond this are
    /// refused with `Error::Overloaded`.
    pub max_pending_commands: usize,
    /// Stop an actor idle this long; the next command starts it again from the journal.
    pub passivate_after: Option<Duration>,
    /// How long `ask` waits for a reply (and for a restarting actor).
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

impl PersistenceConfig {
    /// The database settings of this configuration: its keys (parsed once, here),
    /// compression and durability.
    pub(crate) fn database_config(&self) -> rush_store::Result<rush_store::DatabaseConfig> {
        let encryption_key = self
            .encryption_key
            .as_ref()
            .map(|key| rush_store::EncryptionKey::new(key.bytes()))
            .transpose()?;
        Ok(rush_store::DatabaseConfig {
            durability: self.durability,
            encryption_key,
            compression: self.compression,
            ..rush_store::DatabaseConfig::default()
        })
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
