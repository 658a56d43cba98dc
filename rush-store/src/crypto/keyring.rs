//! The keys of one database: the current key seals every new record, older keys still open
//! records sealed before a key rotation. Records carry the id of the key that sealed them,
//! so a reader picks the right key without trying each one.

use super::EncryptionKey;
use std::sync::Arc;

/// The current key plus older decryption keys, each parsed once. Clones share the keys
/// (a reference count), so one keyring can be handed to every store, table and query of a
/// database.
///
/// Without a current key new records are written in the clear (with a CRC-32), and records
/// sealed with one of the older keys still open. With a current key, records in the clear
/// are refused by stores (they must be encrypted) and opened by the inspector.
///
/// ```
/// use rush_store::{EncryptionKey, Keyring, MemoryManager, Store, PersistentActor};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Default, Clone, Serialize, Deserialize)]
/// # struct Counter { value: i64 }
/// # impl PersistentActor for Counter {
/// #     type Event = i64;
/// #     fn apply(&mut self, delta: &i64) { self.value += delta; }
/// # }
/// let backend = std::sync::Arc::new(MemoryManager::default());
/// let old = EncryptionKey::from([7u8; 32]);
/// let mut store = Store::<Counter>::with_keyring("counters", "c-1", backend.clone(), &Keyring::new(old.clone()))?;
/// store.persist(&5)?;
///
/// // After a rotation to a new key that did not finish, both keys are needed.
/// let keyring = Keyring::new(EncryptionKey::from([8u8; 32])).with_decryption_key(old);
/// let reopened = Store::<Counter>::with_keyring("counters", "c-1", backend, &keyring)?;
/// assert_eq!(reopened.recover()?.map(|c| c.value), Some(5));
/// # Ok::<_, rush_store::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Arc<Keys>,
}

#[derive(Clone, Default)]
struct Keys {
    current: Option<EncryptionKey>,
    older: Vec<EncryptionKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.keys.current)
            .field("older", &self.keys.older)
            .finish()
    }
}

impl From<EncryptionKey> for Keyring {
    fn from(current: EncryptionKey) -> Self {
        Self::new(current)
    }
}

impl From<Option<EncryptionKey>> for Keyring {
    /// `None` is the empty keyring: records are written in the clear.
    fn from(current: Option<EncryptionKey>) -> Self {
        Self {
            keys: Arc::new(Keys {
                current,
                older: Vec::new(),
            }),
        }
    }
}

impl Keyring {
    /// A keyring that seals with `current` and has no older keys yet.
    pub fn new(current: EncryptionKey) -> Self {
        Self::from(Some(current))
    }

    /// Adds `key` for opening records only (an older key, during or after a rotation).
    pub fn with_decryption_key(mut self, key: EncryptionKey) -> Self {
        self.add_decryption_key(key);
        self
    }

    /// Adds `keys` for opening records only.
    pub fn with_decryption_keys(mut self, keys: impl IntoIterator<Item = EncryptionKey>) -> Self {
        for key in keys {
            self.add_decryption_key(key);
        }
        self
    }

    /// Adds `key` for opening records only; a key the keyring holds already is ignored.
    pub fn add_decryption_key(&mut self, key: EncryptionKey) {
        if self.find(key.id()).is_none() {
            Arc::make_mut(&mut self.keys).older.push(key);
        }
    }

    /// The key that seals new records (`None`: records are written in the clear).
    pub fn current(&self) -> Option<&EncryptionKey> {
        self.keys.current.as_ref()
    }

    /// The older keys, which open records but never seal new ones.
    pub fn decryption_keys(&self) -> &[EncryptionKey] {
        &self.keys.older
    }

    /// The key with id `key_id` (as a record header stores it), current or older.
    pub fn find(&self, key_id: u32) -> Option<&EncryptionKey> {
        self.keys
            .current
            .iter()
            .chain(self.keys.older.iter())
            .find(|key| key.id() == key_id)
    }

    /// The ids of every key held, the current one first.
    pub fn key_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys
            .current
            .iter()
            .chain(self.keys.older.iter())
            .map(EncryptionKey::id)
    }

    /// Makes `key` the sealing key; the old current key stays for reading.
    pub(crate) fn promote(&mut self, key: EncryptionKey) {
        let keys = Arc::make_mut(&mut self.keys);
        keys.older.retain(|k| k.id() != key.id());
        if let Some(old) = keys.current.replace(key) {
            self.add_decryption_key(old);
        }
    }
}
