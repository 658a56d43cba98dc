//! Configuration of the persistence extension.

use crate::snapshot_policy::SnapshotPolicy;
use crate::supervision::RestartPolicy;
use rush_store::{CompressionConfig, Durability, EncryptionKey, Keyring};
use std::time::Duration;

/// How the persistence extension runs its actors.
#[derive(Clone)]
pub struct PersistenceConfig {
    /// Default snapshot policy (an actor type can override it).
    pub snapshots: SnapshotPolicy,
    /// The key every new event, snapshot and table row is sealed with (XChaCha20-Poly1305);
    /// `None`: records are written in the clear, with a CRC-32. Build it from 32 bytes
    /// (`[u8; 32].into()`), hex ([`EncryptionKey::from_hex`]) or a file
    /// ([`EncryptionKey::from_file`]).
    pub encryption_key: Option<EncryptionKey>,
    /// Older keys that open records but never seal new ones: after a key rotation (for
    /// example `rush rotate-key`) that did not finish, give the old key here and the new
    /// one as [`encryption_key`](Self::encryption_key). A record sealed with a key that is
    /// in neither fails its entity's recovery with an error naming the key id it needs.
    pub decryption_keys: Vec<EncryptionKey>,
    /// Adaptive gzip of records (`None`: off).
    pub compression: Option<CompressionConfig>,
    /// When a persist is acknowledged (default: on disk).
    pub durability: Durability,
    /// Restarts after failures.
    pub restart: RestartPolicy,
    /// At most this many actors recover at once (a restart of thousands must not stall);
    /// 0 counts as 1, and any count beyond what a semaphore holds as that maximum.
    /// Default 50, as Akka's `max-concurrent-recoveries`: 1,000 actors recovered 10-20%
    /// sooner than with 16 in perf_report's recovery row, since recoveries wait on the
    /// store's reader threads and overlap.
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
            decryption_keys: Vec::new(),
            compression: Some(CompressionConfig::default()),
            durability: Durability::Immediate,
            restart: RestartPolicy::default(),
            max_concurrent_recoveries: 50,
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
    /// The keys of this configuration as one keyring: the encryption key, then the
    /// decryption keys. The keys were parsed when they were built; this only shares them.
    pub fn keyring(&self) -> Keyring {
        Keyring::from(self.encryption_key.clone())
            .with_decryption_keys(self.decryption_keys.iter().cloned())
    }

    /// The database settings of this configuration: its keys, compression and durability.
    pub(crate) fn database_config(&self) -> rush_store::DatabaseConfig {
        rush_store::DatabaseConfig {
            durability: self.durability,
            encryption_key: self.encryption_key.clone(),
            decryption_keys: self.decryption_keys.clone(),
            compression: self.compression,
            ..rush_store::DatabaseConfig::default()
        }
    }
}

impl std::fmt::Debug for PersistenceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistenceConfig")
            .field("snapshots", &self.snapshots)
            .field("encryption_key", &self.encryption_key)
            .field("decryption_keys", &self.decryption_keys)
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
