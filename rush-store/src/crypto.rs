//! Record encryption: XChaCha20-Poly1305 with a random 192-bit nonce per record, so that
//! billions of records under one key never risk a nonce collision, and with the record's
//! identity as associated data, so that a record copied to another place fails to open.

use crate::error::{Error, Result};
use chacha20poly1305::aead::{AeadCore, AeadInPlace, KeyInit, OsRng};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

/// Length of an encryption key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the random nonce stored in front of each ciphertext.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of the authentication tag stored after each ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// A 32-byte key. Its bytes are zeroized on drop and never printed.
#[derive(Clone)]
pub struct EncryptionKey {
    cipher: XChaCha20Poly1305,
    id: u32,
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &format_args!("{:08x}", self.id))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl EncryptionKey {
    /// Takes exactly [`KEY_LEN`] bytes; any other length is [`Error::InvalidKey`] (a key
    /// is never truncated or padded).
    pub fn new(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != KEY_LEN {
            return Err(Error::InvalidKey {
                actual: bytes.len(),
            });
        }
        // The cipher owns the only copy of the key and zeroizes it on drop.
        let cipher = XChaCha20Poly1305::new_from_slice(bytes).map_err(|_| Error::InvalidKey {
            actual: bytes.len(),
        })?;
        let id = fingerprint(&cipher);
        Ok(Self { cipher, id })
    }

    /// A 32-bit fingerprint of the key, stored in every record it seals, so that a reader
    /// knows which key opens a record (and key rotation can resume after a crash).
    /// It is a MAC of a fixed message: it reveals nothing about the key.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Encrypts `plaintext` and returns `nonce || ciphertext || tag`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let body = out
            .get_mut(NONCE_LEN..)
            .ok_or_else(|| internal("seal buffer"))?;
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, aad, body)
            .map_err(|_| internal("encryption failed"))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens `nonce || ciphertext || tag`; `None` when the tag does not verify.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let body_len = sealed.len().checked_sub(NONCE_LEN + TAG_LEN)?;
        let nonce = XNonce::from_slice(sealed.get(..NONCE_LEN)?);
        let mut plaintext = sealed.get(NONCE_LEN..NONCE_LEN + body_len)?.to_vec();
        let tag = Tag::from_slice(sealed.get(NONCE_LEN + body_len..)?);
        self.cipher
            .decrypt_in_place_detached(nonce, aad, &mut plaintext, tag)
            .ok()?;
        Some(plaintext)
    }
}

fn fingerprint(cipher: &XChaCha20Poly1305) -> u32 {
    let nonce = XNonce::default();
    let mut empty = [0u8; 0];
    match cipher.encrypt_in_place_detached(&nonce, b"rush-store key id v1", &mut empty) {
        Ok(tag) => {
            let mut id = [0u8; 4];
            id.copy_from_slice(tag.get(..4).unwrap_or(&[0; 4]));
            // 0 means "not encrypted" in the record header.
            u32::from_be_bytes(id).max(1)
        }
        Err(_) => 1,
    }
}

fn internal(what: &str) -> Error {
    Error::Serialization(format!("crypto: {what}"))
}

/// The keys a store can open records with: the current one (used to seal) and older ones
/// kept for reading during and after a key rotation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Keyring {
    current: Option<EncryptionKey>,
    previous: Vec<EncryptionKey>,
}

impl Keyring {
    pub(crate) fn new(current: Option<EncryptionKey>) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    pub(crate) fn current(&self) -> Option<&EncryptionKey> {
        self.current.as_ref()
    }

    pub(crate) fn find(&self, id: u32) -> Option<&EncryptionKey> {
        self.current
            .iter()
            .chain(self.previous.iter())
            .find(|key| key.id() == id)
    }

    /// Keeps `key` for reading only.
    pub(crate) fn add_previous(&mut self, key: EncryptionKey) {
        if self.find(key.id()).is_none() {
            self.previous.push(key);
        }
    }

    /// Makes `key` the sealing key; the old current key stays for reading.
    pub(crate) fn promote(&mut self, key: EncryptionKey) {
        let old = self.current.replace(key.clone());
        self.previous.retain(|k| k.id() != key.id());
        if let Some(old) = old {
            self.add_previous(old);
        }
    }
}

#[cfg(test)]
mod tests;
