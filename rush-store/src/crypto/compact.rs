//! Sealing of format-3 records: each stores 12 bytes of nonce material instead of a whole
//! 24-byte nonce, and the nonce is rebuilt from them and the record's timestamp (which the
//! header stores anyway).
//!
//! The material is `[H u64][L u32]`: a writer thread draws `H` and a starting `L` from the
//! OS, then counts `L` up, drawing again before `L` would come back to its start. The
//! nonce is
//!
//! ```text
//! [H][timestamp >> 32 (u32 BE)][0 0 0 0] ‖ [L][timestamp & 0xffff_ffff (u32 BE)]
//! ```
//!
//! so two records share a nonce only if they share `H`, `L` and the microsecond they were
//! written in. One thread never repeats `(H, L)`; two threads (or processes, or runs)
//! share `H` with probability 2^-64, and would then also have to seal the same `L` in the
//! same microsecond. The first 16 bytes, from which XChaCha20 derives its subkey, change
//! only with `H` and every 71 minutes, so a reader derives the subkey once per writer run
//! as before (`SubkeyCache`).

use super::{EncryptionKey, SubkeyCache, TAG_LEN, XNonce, random_bytes};
use crate::error::Result;

/// Bytes of nonce material stored in front of each format-3 ciphertext.
pub(crate) const NONCE_MATERIAL_LEN: usize = 12;

/// The 24-byte XChaCha20 nonce of `material` sealed at `timestamp_micros`.
fn nonce(material: &[u8; NONCE_MATERIAL_LEN], timestamp_micros: u64) -> XNonce {
    let [h0, h1, h2, h3, h4, h5, h6, h7, l0, l1, l2, l3] = *material;
    let [t0, t1, t2, t3, t4, t5, t6, t7] = timestamp_micros.to_be_bytes();
    XNonce {
        prefix: [h0, h1, h2, h3, h4, h5, h6, h7, t0, t1, t2, t3, 0, 0, 0, 0],
        counter: [l0, l1, l2, l3, t4, t5, t6, t7],
    }
}

/// The next material of this thread (see the module doc). A forked child draws anew.
fn next_material() -> Result<[u8; NONCE_MATERIAL_LEN]> {
    use std::cell::Cell;
    /// `H`, the next `L`, how many more `L` this `H` may take, and the process it was
    /// drawn in.
    type State = ([u8; 8], u32, u32, u32);
    thread_local! {
        static STATE: Cell<State> = const { Cell::new(([0; 8], 0, 0, 0)) };
    }
    let pid = std::process::id();
    STATE.with(|state| {
        let (mut high, mut low, mut left, mut owner) = state.get();
        if owner != pid || left == 0 {
            let [h0, h1, h2, h3, h4, h5, h6, h7, l0, l1, l2, l3] = random_bytes::<12>()?;
            high = [h0, h1, h2, h3, h4, h5, h6, h7];
            low = u32::from_be_bytes([l0, l1, l2, l3]);
            left = u32::MAX;
            owner = pid;
        }
        let mut material = [0u8; NONCE_MATERIAL_LEN];
        let (h, l) = material.split_at_mut(8);
        h.copy_from_slice(&high);
        l.copy_from_slice(&low.to_be_bytes());
        state.set((high, low.wrapping_add(1), left - 1, owner));
        Ok(material)
    })
}

impl EncryptionKey {
    /// Seals `plaintext` as a format-3 record body, appended to `out`:
    /// `material (12) ‖ ciphertext ‖ tag (16)`, `aad` authenticated alongside.
    pub(crate) fn seal_compact_into(
        &self,
        aad: &[u8],
        timestamp_micros: u64,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let material = next_material()?;
        out.reserve(NONCE_MATERIAL_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&material);
        self.encrypt_appended(&nonce(&material, timestamp_micros), aad, plaintext, out)
    }

    /// Opens a format-3 record body sealed at `timestamp_micros` into `out`; `false` when
    /// the tag does not verify. `out` and `cache` are reused across records.
    pub(crate) fn open_compact_into(
        &self,
        aad: &[u8],
        timestamp_micros: u64,
        sealed: &[u8],
        out: &mut Vec<u8>,
        cache: &mut Option<SubkeyCache>,
    ) -> bool {
        let Some((material, rest)) = sealed.split_first_chunk::<NONCE_MATERIAL_LEN>() else {
            out.clear();
            return false;
        };
        let Some((body, tag)) = rest
            .len()
            .checked_sub(TAG_LEN)
            .and_then(|at| rest.split_at_checked(at))
        else {
            out.clear();
            return false;
        };
        self.open_parts(
            aad,
            &nonce(material, timestamp_micros),
            body,
            tag,
            out,
            cache,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_never_repeats_its_material_and_threads_draw_their_own() {
        let mine: Vec<_> = (0..1000).map(|_| next_material().unwrap()).collect();
        let mut seen = std::collections::HashSet::new();
        assert!(mine.iter().all(|m| seen.insert(*m)));
        // One H per thread run, L counting up.
        assert!(mine.windows(2).all(|w| w[0][..8] == w[1][..8]));
        let other = std::thread::spawn(|| next_material().unwrap())
            .join()
            .unwrap();
        assert_ne!(other[..8], mine[0][..8]);
    }

    #[test]
    fn the_nonce_holds_the_material_and_the_whole_timestamp() {
        let material = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let nonce = nonce(&material, 0x1122_3344_5566_7788);
        assert_eq!(
            nonce.prefix,
            [1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0]
        );
        assert_eq!(nonce.counter, [9, 10, 11, 12, 0x55, 0x66, 0x77, 0x88]);
    }

    #[test]
    fn a_sealed_body_opens_only_at_its_timestamp_and_aad() {
        let key = EncryptionKey::from([7u8; 32]);
        let mut sealed = Vec::new();
        key.seal_compact_into(b"aad", 42, b"hello", &mut sealed)
            .unwrap();
        assert_eq!(sealed.len(), NONCE_MATERIAL_LEN + 5 + TAG_LEN);
        let mut out = Vec::new();
        let mut cache = None;
        assert!(key.open_compact_into(b"aad", 42, &sealed, &mut out, &mut cache));
        assert_eq!(out, b"hello");
        assert!(!key.open_compact_into(b"aad", 43, &sealed, &mut out, &mut cache));
        assert!(!key.open_compact_into(b"aaD", 42, &sealed, &mut out, &mut cache));
        assert!(!key.open_compact_into(b"aad", 42, &sealed[..27], &mut out, &mut cache));
        assert!(out.is_empty());
    }
}
