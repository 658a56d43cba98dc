//! The subkey a thread last sealed under, kept so that sealing does not run HChaCha20 and
//! a key set-up for every record.
//!
//! XChaCha20 derives its subkey from the key and the nonce's first 16 bytes, and a writer
//! thread's nonces share those bytes for a long time (one random draw per thread, plus the
//! timestamp's high half in format 3: a new prefix every 71 minutes). So each thread keeps
//! the cipher of its last (key, prefix) pair and reuses it while both stay the same.
//!
//! The key is recognised by its allocation, not by its 32-bit id: two keys may share an
//! id, and sealing under the wrong subkey would make records nobody can open. The cache
//! holds a `Weak` to the parsed key, so that allocation cannot be reused by another key
//! while the cache points at it. What stays behind once the key is dropped is the subkey
//! of one prefix (it opens only this thread's records of that prefix, never the key), until
//! the thread seals under another key or ends; readers keep the same in `SubkeyCache`.

use super::{PREFIX_LEN, Parsed, subkey_cipher};
use ring::aead::LessSafeKey;
use std::cell::RefCell;
use std::sync::{Arc, Weak};

/// One thread's last sealing cipher.
struct Cached {
    owner: Weak<Parsed>,
    prefix: [u8; PREFIX_LEN],
    cipher: LessSafeKey,
}

thread_local! {
    static LAST: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// Runs `seal` with the cipher of (`key`, `prefix`): this thread's cached one when it
/// matches, else a fresh one, kept for the next call. `None` when the cipher cannot be
/// built.
pub(super) fn with_cipher<T>(
    key: &Arc<Parsed>,
    prefix: &[u8; PREFIX_LEN],
    seal: impl FnOnce(&LessSafeKey) -> T,
) -> Option<T> {
    let mut seal = Some(seal);
    let cached = LAST.try_with(|last| {
        let mut last = last.try_borrow_mut().ok()?;
        let hit = last.as_ref().is_some_and(|c| {
            std::ptr::eq(c.owner.as_ptr(), Arc::as_ptr(key)) && &c.prefix == prefix
        });
        if !hit {
            *last = Some(Cached {
                owner: Arc::downgrade(key),
                prefix: *prefix,
                cipher: subkey_cipher(&key.material, prefix)?,
            });
        }
        let cipher = &last.as_ref()?.cipher;
        seal.take().map(|seal| seal(cipher))
    });
    match cached {
        Ok(Some(done)) => Some(done),
        // The thread is ending (its cache is gone) or the cache is in use further up
        // this thread's stack: seal without it.
        _ => {
            let cipher = subkey_cipher(&key.material, prefix)?;
            seal.take().map(|seal| seal(&cipher))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncryptionKey;

    fn cached_owner() -> *const Parsed {
        LAST.with_borrow(|last| last.as_ref().map_or(std::ptr::null(), |c| c.owner.as_ptr()))
    }

    #[test]
    fn a_thread_keeps_the_cipher_of_the_key_it_last_sealed_under() {
        let first = EncryptionKey::from([1u8; 32]);
        let second = EncryptionKey::from([2u8; 32]);
        let sealed = first.seal(b"a", b"one").unwrap();
        assert_eq!(cached_owner(), Arc::as_ptr(&first.inner));
        let other = second.seal(b"a", b"two").unwrap();
        assert_eq!(cached_owner(), Arc::as_ptr(&second.inner));
        // Each opens under its own key only: the cache never lent one key's subkey to
        // the other.
        assert_eq!(first.open(b"a", &sealed).unwrap(), b"one");
        assert_eq!(second.open(b"a", &other).unwrap(), b"two");
        assert!(first.open(b"a", &other).is_err());
        assert!(second.open(b"a", &sealed).is_err());
    }

    #[test]
    fn a_key_made_after_the_cached_one_was_dropped_is_never_taken_for_it() {
        let first = EncryptionKey::from([3u8; 32]);
        first.seal(b"a", b"x").unwrap();
        drop(first);
        // The dropped key's allocation is held by the cache's Weak, so a new key cannot
        // take its address and be mistaken for it.
        let second = EncryptionKey::from([4u8; 32]);
        assert_ne!(cached_owner(), Arc::as_ptr(&second.inner));
        let sealed = second.seal(b"a", b"y").unwrap();
        assert_eq!(second.open(b"a", &sealed).unwrap(), b"y");
        assert!(EncryptionKey::from([3u8; 32]).open(b"a", &sealed).is_err());
    }
}
