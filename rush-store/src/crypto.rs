//! Record encryption: XChaCha20-Poly1305 with a never-repeating 192-bit nonce per record, so that
//! billions of records under one key never risk a nonce collision, and with the record's
//! identity as associated data, so that a record copied to another place fails to open.

mod compact;
mod keyring;
mod parse;

pub(crate) use compact::NONCE_MATERIAL_LEN;
pub use keyring::Keyring;
pub use parse::KeyProblem;

use crate::error::{Error, Result};
use chacha20poly1305::aead::{AeadInOut, Generate, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag, XChaCha20Poly1305, XNonce};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// Length of an encryption key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the nonce stored in front of each ciphertext.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of the authentication tag stored after each ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// A 32-byte encryption key, parsed once: clones share the parsed cipher, so handing one
/// key to every store of a database costs a reference count, not a key schedule.
///
/// Build it from the 32 bytes (`From<[u8; 32]>`, or `TryFrom<&[u8]>` which refuses any other
/// length), from hex text ([`EncryptionKey::from_hex`]) or from a file
/// ([`EncryptionKey::from_file`]). Its bytes
/// are zeroized when the last clone is dropped, and it is never printed: `Debug` shows only
/// the key id, and there is no `Display`.
///
/// ```
/// use rush_store::EncryptionKey;
///
/// let key = EncryptionKey::from([7u8; 32]);
/// let same = EncryptionKey::from_hex(&"07".repeat(32))?;
/// assert_eq!(key.id(), same.id());
/// assert!(EncryptionKey::try_from(&b"too short"[..]).is_err());
/// assert!(!format!("{key:?}").contains("0707"));
/// # Ok::<_, rush_store::Error>(())
/// ```
#[derive(Clone)]
pub struct EncryptionKey {
    inner: Arc<Parsed>,
}

/// What parsing a key computes once: the cipher (with its own copy of the key), the raw
/// bytes (for the per-writer subkeys of [`EncryptionKey::open_into`]) and the key id.
/// Both copies of the key are zeroized on drop.
struct Parsed {
    cipher: XChaCha20Poly1305,
    material: Zeroizing<[u8; KEY_LEN]>,
    id: u32,
}

/// The ChaCha20-Poly1305 subkey of one (key, nonce prefix) pair, kept while a reader opens
/// many records: XChaCha20 derives a subkey from the first 16 nonce bytes with HChaCha20,
/// and records sealed by one writer thread share those bytes (see `next_nonce`), so the
/// derivation runs once per writer instead of once per record. Same bytes, same result.
pub(crate) struct SubkeyCache {
    key_id: u32,
    prefix: [u8; 16],
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &format_args!("{:08x}", self.id()))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TryFrom<&[u8]> for EncryptionKey {
    type Error = Error;

    /// Takes exactly [`KEY_LEN`] bytes; any other length is [`Error::InvalidKey`] (a key
    /// is never truncated or padded).
    fn try_from(bytes: &[u8]) -> Result<Self> {
        let array: &[u8; KEY_LEN] = bytes.try_into().map_err(|_| Error::InvalidKey {
            actual: bytes.len(),
        })?;
        Ok(Self::parse(array))
    }
}

impl From<[u8; KEY_LEN]> for EncryptionKey {
    /// The key with these bytes (the array given is wiped once parsed).
    fn from(mut bytes: [u8; KEY_LEN]) -> Self {
        let key = Self::parse(&bytes);
        bytes.zeroize();
        key
    }
}

impl EncryptionKey {
    /// Takes exactly [`KEY_LEN`] bytes (a key is never truncated or padded). The same as
    /// `EncryptionKey::try_from(bytes)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] for any other length.
    pub fn new(bytes: &[u8]) -> Result<Self> {
        Self::try_from(bytes)
    }

    fn parse(bytes: &[u8; KEY_LEN]) -> Self {
        let cipher = XChaCha20Poly1305::new(bytes.into());
        let id = fingerprint(&cipher);
        Self {
            inner: Arc::new(Parsed {
                cipher,
                material: Zeroizing::new(*bytes),
                id,
            }),
        }
    }

    /// A 32-bit fingerprint of the key, stored in every record it seals, so that a reader
    /// knows which key opens a record (and key rotation can resume after a crash).
    /// It is a MAC of a fixed message: it reveals nothing about the key.
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    /// Whether `other` is a clone of this key, sharing its parsed cipher.
    #[cfg(test)]
    pub(crate) fn shares_parse_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Encrypts `plaintext` as the journal seals a record, and returns
    /// `nonce || ciphertext || tag` (24 + n + 16 bytes): XChaCha20-Poly1305 with a nonce that
    /// never repeats, `aad` authenticated alongside (bind the value to where it belongs, as
    /// the journal binds a record to its key). For values an application keeps beside the
    /// journal under the same key; [`EncryptionKey::open`] reverses it.
    ///
    /// ```
    /// use rush_store::EncryptionKey;
    ///
    /// let key = EncryptionKey::from([7u8; 32]);
    /// let sealed = key.seal(b"settings/42", b"secret value")?;
    /// assert_eq!(key.open(b"settings/42", &sealed)?, b"secret value");
    /// assert!(key.open(b"settings/43", &sealed).is_err()); // another place: refused
    /// # Ok::<_, rush_store::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Serialization`] only if the system's random source fails when a thread
    /// seals its first value (its nonce prefix), or the cipher refuses the input (a value
    /// beyond XChaCha20's 256 GiB limit).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce = next_nonce()?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        self.encrypt_appended(&nonce, aad, plaintext, &mut out)?;
        Ok(out)
    }

    /// Appends `plaintext` to `out`, encrypts it there under `nonce`, and appends the tag:
    /// the sealing step of every record layout (what goes in front of the ciphertext is
    /// the caller's).
    fn encrypt_appended(
        &self,
        nonce: &XNonce,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(plaintext);
        let body = out
            .get_mut(start..)
            .ok_or_else(|| internal("seal buffer"))?;
        let tag = self
            .inner
            .cipher
            .encrypt_inout_detached(nonce, aad, body.into())
            .map_err(|_| internal("encryption failed"))?;
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens `nonce || ciphertext || tag` into `out` (cleared first); `false` when the tag
    /// does not verify. `out` and `cache` are reused across records, so a replay neither
    /// allocates nor re-derives the subkey per record.
    pub(crate) fn open_into(
        &self,
        aad: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
        cache: &mut Option<SubkeyCache>,
    ) -> bool {
        out.clear();
        let Some(body_len) = sealed.len().checked_sub(NONCE_LEN + TAG_LEN) else {
            return false;
        };
        let (Some(prefix), Some(counter), Some(body), Some(tag)) = (
            sealed.get(..16),
            sealed.get(16..NONCE_LEN),
            sealed.get(NONCE_LEN..NONCE_LEN + body_len),
            sealed.get(NONCE_LEN + body_len..),
        ) else {
            return false;
        };
        self.open_parts(aad, prefix, counter, body, tag, out, cache)
    }

    /// Opens `ciphertext ‖ tag` under XChaCha20 nonce `prefix ‖ counter` (16 + 8 bytes)
    /// into `out`, deriving the subkey of `prefix` unless `cache` holds it.
    #[allow(clippy::too_many_arguments)]
    fn open_parts(
        &self,
        aad: &[u8],
        prefix: &[u8],
        counter: &[u8],
        body: &[u8],
        tag: &[u8],
        out: &mut Vec<u8>,
        cache: &mut Option<SubkeyCache>,
    ) -> bool {
        out.clear();
        let fresh = cache
            .as_ref()
            .is_none_or(|c| c.key_id != self.id() || c.prefix != prefix);
        if fresh {
            let Ok(prefix_block) = <&chacha20::cipher::Array<u8, _>>::try_from(prefix) else {
                return false;
            };
            let key = chacha20::Key::from(*self.inner.material);
            let mut subkey = chacha20::hchacha::<chacha20::R20>(&key, prefix_block);
            let cipher = ChaCha20Poly1305::new(&subkey);
            subkey.as_mut_slice().zeroize();
            let mut cached_prefix = [0u8; 16];
            cached_prefix.copy_from_slice(prefix);
            *cache = Some(SubkeyCache {
                key_id: self.id(),
                prefix: cached_prefix,
                cipher,
            });
        }
        let Some(cached) = cache.as_ref() else {
            return false;
        };
        let Ok(tag) = Tag::try_from(tag) else {
            return false;
        };
        // XChaCha20's inner nonce: four zero bytes, then the last 8 bytes of the 24.
        let mut nonce = Nonce::default();
        match nonce.get_mut(4..) {
            Some(tail) if tail.len() == counter.len() => tail.copy_from_slice(counter),
            _ => return false,
        }
        out.extend_from_slice(body);
        let opened = cached
            .cipher
            .decrypt_inout_detached(&nonce, aad, out.as_mut_slice().into(), &tag)
            .is_ok();
        if !opened {
            out.clear();
        }
        opened
    }

    /// Opens what [`EncryptionKey::seal`] sealed with this key and the same `aad`.
    ///
    /// # Errors
    ///
    /// [`Error::Decryption`] when the tag does not verify: another key, another `aad`, or
    /// bytes changed or cut short.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        if self.open_into(aad, sealed, &mut out, &mut None) {
            Ok(out)
        } else {
            Err(Error::Decryption {
                record: format!("a value of {} bytes", sealed.len()),
                reason: format!("key {:08x} does not open it with this aad", self.id()),
            })
        }
    }
}

/// A fresh 192-bit nonce: a random 128-bit prefix drawn once per thread from the OS,
/// followed by a 64-bit counter. Prefixes of different threads and processes collide with
/// probability ~2^-128 per pair, and a counter never repeats within one, so no nonce is
/// ever reused, without drawing randomness per record. A forked child draws a new prefix.
fn next_nonce() -> Result<XNonce> {
    use std::cell::Cell;
    thread_local! {
        /// The prefix, the process it was drawn in, and the next counter value.
        static STATE: Cell<([u8; 16], u32, u64)> = const { Cell::new(([0; 16], 0, 0)) };
    }
    let pid = std::process::id();
    let (prefix, counter) = STATE.with(|state| {
        let (mut prefix, mut owner, mut counter) = state.get();
        // First use on this thread, or a forked child that inherited the parent's state.
        if owner != pid || counter == 0 {
            let random = XNonce::try_generate()
                .map_err(|e| internal(&format!("the system's random source failed: {e}")))?;
            prefix.copy_from_slice(random.get(..16).unwrap_or(&[0; 16]));
            owner = pid;
            counter = 1;
        }
        state.set((prefix, owner, counter.wrapping_add(1)));
        Ok::<_, Error>((prefix, counter))
    })?;
    let mut nonce = XNonce::default();
    let (head, tail) = nonce.split_at_mut(16);
    head.copy_from_slice(&prefix);
    tail.copy_from_slice(&counter.to_be_bytes());
    Ok(nonce)
}

fn fingerprint(cipher: &XChaCha20Poly1305) -> u32 {
    let nonce = XNonce::default();
    let mut empty = [0u8; 0];
    match cipher.encrypt_inout_detached(&nonce, b"rush-store key id v1", (&mut empty[..]).into()) {
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

#[cfg(test)]
mod tests;
