//! Record encryption: XChaCha20-Poly1305 with a never-repeating 192-bit nonce per record, so that
//! billions of records under one key never risk a nonce collision, and with the record's
//! identity as associated data, so that a record copied to another place fails to open.
//!
//! XChaCha20-Poly1305 is ChaCha20-Poly1305 (RFC 8439) under a subkey that HChaCha20
//! derives from the key and the nonce's first 16 bytes, with the nonce's last 8 bytes
//! behind four zero bytes as the inner nonce (draft-irtf-cfrg-xchacha). Rush derives the
//! subkey with `chacha20`'s HChaCha20 and seals and opens with `ring`'s ChaCha20-Poly1305,
//! whose assembly picks its vector code at run time without a per-message set-up: the
//! same bytes as the `chacha20poly1305` crate (the tests check both ways), and fast for
//! small records in every build, with no compiler flags (README, "Encryption and your
//! build").

mod compact;
mod keyring;
mod parse;
mod seal_cache;

pub(crate) use compact::NONCE_MATERIAL_LEN;
pub use keyring::Keyring;
pub use parse::KeyProblem;

use crate::error::{Error, Result};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// Length of an encryption key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the nonce stored in front of each ciphertext.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of the authentication tag stored after each ciphertext.
pub(crate) const TAG_LEN: usize = 16;
/// Length of the nonce's start from which HChaCha20 derives the subkey.
const PREFIX_LEN: usize = 16;

/// Length of the nonce's end that the inner nonce carries.
const COUNTER_LEN: usize = NONCE_LEN - PREFIX_LEN;

/// An XChaCha20 nonce, stored as `prefix ‖ counter`: HChaCha20 derives the subkey from the
/// prefix, and the inner ChaCha20 nonce is four zero bytes and the counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct XNonce {
    prefix: [u8; PREFIX_LEN],
    counter: [u8; COUNTER_LEN],
}

/// A 32-byte encryption key, parsed once: clones share the parsed cipher, so handing one
/// key to every store of a database costs a reference count, not a key schedule.
///
/// Build it from the 32 bytes (`From<[u8; 32]>`, or `TryFrom<&[u8]>` which refuses any other
/// length), from hex text ([`EncryptionKey::from_hex`]) or from a file
/// ([`EncryptionKey::from_file`]). Its bytes
/// are zeroized when the last clone is dropped, and it is never printed: `Debug` shows only
/// the key id, and there is no `Display`. A thread that sealed under it keeps the subkey of
/// its current nonce prefix (which opens only that thread's records of that prefix, never
/// others) until it seals under another key or ends, so that sealing does not derive a
/// subkey per record.
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

/// What parsing a key computes once: the key's bytes (zeroized on drop), from which every
/// nonce prefix's subkey is derived, and the key id.
struct Parsed {
    material: Zeroizing<[u8; KEY_LEN]>,
    id: u32,
}

/// The ChaCha20-Poly1305 subkey of one (key, nonce prefix) pair, kept while a reader opens
/// many records: XChaCha20 derives a subkey from the first 16 nonce bytes with HChaCha20,
/// and records sealed by one writer thread share those bytes (see `next_nonce`), so the
/// derivation runs once per writer instead of once per record. Same bytes, same result.
pub(crate) struct SubkeyCache {
    key_id: u32,
    prefix: [u8; PREFIX_LEN],
    cipher: LessSafeKey,
}

/// The ChaCha20-Poly1305 cipher under the subkey HChaCha20 derives from `material` and
/// `prefix`; the subkey's bytes are wiped once the cipher holds them.
fn subkey_cipher(material: &[u8; KEY_LEN], prefix: &[u8; PREFIX_LEN]) -> Option<LessSafeKey> {
    let key = chacha20::Key::from(*material);
    let mut subkey = chacha20::hchacha::<chacha20::R20>(&key, &(*prefix).into());
    let cipher = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice()).ok();
    subkey.as_mut_slice().zeroize();
    cipher.map(LessSafeKey::new)
}

/// XChaCha20's inner nonce: four zero bytes, then the last 8 bytes of the 24.
fn inner_nonce(counter: &[u8; COUNTER_LEN]) -> Nonce {
    let [c0, c1, c2, c3, c4, c5, c6, c7] = *counter;
    Nonce::assume_unique_for_key([0, 0, 0, 0, c0, c1, c2, c3, c4, c5, c6, c7])
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
        Self {
            inner: Arc::new(Parsed {
                material: Zeroizing::new(*bytes),
                id: fingerprint(bytes),
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
        out.extend_from_slice(&nonce.prefix);
        out.extend_from_slice(&nonce.counter);
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
        let tag = seal_cache::with_cipher(&self.inner, &nonce.prefix, |cipher| {
            cipher.seal_in_place_separate_tag(inner_nonce(&nonce.counter), Aad::from(aad), body)
        })
        .ok_or_else(|| internal("subkey"))?
        .map_err(|_| internal("encryption failed"))?;
        out.extend_from_slice(tag.as_ref());
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
        let (Some((prefix, rest)), Some(body), Some(tag)) = (
            sealed.split_first_chunk::<PREFIX_LEN>(),
            sealed.get(NONCE_LEN..NONCE_LEN + body_len),
            sealed.get(NONCE_LEN + body_len..),
        ) else {
            return false;
        };
        let Some(counter) = rest.first_chunk::<COUNTER_LEN>() else {
            return false;
        };
        let nonce = XNonce {
            prefix: *prefix,
            counter: *counter,
        };
        self.open_parts(aad, &nonce, body, tag, out, cache)
    }

    /// Opens `ciphertext ‖ tag` under XChaCha20 `nonce` into `out`, deriving the subkey of
    /// its prefix unless `cache` holds it.
    fn open_parts(
        &self,
        aad: &[u8],
        nonce: &XNonce,
        body: &[u8],
        tag: &[u8],
        out: &mut Vec<u8>,
        cache: &mut Option<SubkeyCache>,
    ) -> bool {
        out.clear();
        let Ok(tag) = Tag::try_from(tag) else {
            return false;
        };
        let prefix = &nonce.prefix;
        let fresh = cache
            .as_ref()
            .is_none_or(|c| c.key_id != self.id() || &c.prefix != prefix);
        if fresh {
            let Some(cipher) = subkey_cipher(&self.inner.material, prefix) else {
                return false;
            };
            *cache = Some(SubkeyCache {
                key_id: self.id(),
                prefix: *prefix,
                cipher,
            });
        }
        let Some(cached) = cache.as_ref() else {
            return false;
        };
        out.extend_from_slice(body);
        let opened = cached
            .cipher
            .open_in_place_separate_tag(inner_nonce(&nonce.counter), Aad::from(aad), tag, out, 0..)
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
            prefix = random_bytes()?;
            owner = pid;
            counter = 1;
        }
        state.set((prefix, owner, counter.wrapping_add(1)));
        Ok::<_, Error>((prefix, counter))
    })?;
    Ok(XNonce {
        prefix,
        counter: counter.to_be_bytes(),
    })
}

/// `N` bytes from the system's random source.
fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| internal("the system's random source failed"))?;
    Ok(bytes)
}

/// The key id: the first four bytes of the tag XChaCha20-Poly1305 computes over nothing,
/// with a zero nonce and a fixed `aad` (0 becomes 1: 0 means "not encrypted" in a record
/// header).
fn fingerprint(material: &[u8; KEY_LEN]) -> u32 {
    let Some(cipher) = subkey_cipher(material, &[0; PREFIX_LEN]) else {
        return 1;
    };
    let mut empty = [0u8; 0];
    match cipher.seal_in_place_separate_tag(
        inner_nonce(&[0; 8]),
        Aad::from(b"rush-store key id v1"),
        &mut empty,
    ) {
        Ok(tag) => {
            let [a, b, c, d, ..] = *tag.as_ref() else {
                return 1;
            };
            u32::from_be_bytes([a, b, c, d]).max(1)
        }
        Err(_) => 1,
    }
}

fn internal(what: &str) -> Error {
    Error::Serialization(format!("crypto: {what}"))
}

#[cfg(test)]
mod tests;
