//! Entry points for fuzzing and for replaying fuzz corpora as tests: each runs the crate's
//! real decoding code (never a copy) on hostile bytes. Not a stable API: hidden from the
//! documentation, for `fuzz/` and `tests/fuzz_corpus.rs`.
//!
//! Every function returns an error (or `Ok`) for any input; a panic, a hang or an
//! allocation beyond the format's limits is a bug.

use crate::codec::envelope::{self, Plaintext, Scratch};
use crate::codec::{Codec, MAX_EVENT_SIZE};
use crate::crypto::{EncryptionKey, Keyring};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The fixed key of the decryption target: the key of the golden files
/// (`tests/golden/v1/`), so that their encrypted records are valid seeds.
pub const FUZZ_KEY: &[u8; 32] = b"rush-store golden test key v1!!!";

/// What records are decoded into: a mix of the shapes bincode handles (strings,
/// varints, floats, sequences, options, enum tags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FuzzEvent {
    /// A string and a number.
    Named(String, u64),
    /// Bytes and an optional float.
    Data(Vec<u8>, Option<f64>),
    /// Nothing.
    Empty,
}

/// Splits a fuzz input into the record's identity (its storage key, the associated data)
/// and the record: `[identity length u8][identity][record]`.
pub fn split_input(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    let len = usize::from(len).min(rest.len());
    rest.split_at(len)
}

/// The inverse of [`split_input`], to build corpus files.
pub fn join_input(identity: &[u8], record: &[u8]) -> Vec<u8> {
    let len = u8::try_from(identity.len()).unwrap_or(u8::MAX);
    let identity = identity.get(..usize::from(len)).unwrap_or(identity);
    let mut out = Vec::with_capacity(1 + identity.len() + record.len());
    out.push(len);
    out.extend_from_slice(identity);
    out.extend_from_slice(record);
    out
}

fn codec(key: Option<&[u8]>) -> Result<Codec> {
    Ok(Codec {
        keyring: Keyring::from(key.map(EncryptionKey::new).transpose()?),
        ..Codec::default()
    })
}

/// Decodes `record` at `identity` the way reads do: header, CRC or tag (with `key`),
/// bounded gunzip, then bincode, both as an event (formats v1 and v2, with its meta
/// block) and as a snapshot-like v1 record. `Ok` when either decodes.
pub fn decode_record(identity: &[u8], record: &[u8], key: Option<&[u8]>) -> Result<()> {
    let codec = codec(key)?;
    let describe = || "fuzz record".to_owned();
    let mut scratch = Scratch::default();
    let as_event = codec.decode_event_with::<FuzzEvent>(identity, record, &describe, &mut scratch);
    let as_state = codec.decode::<FuzzEvent>(identity, record, MAX_EVENT_SIZE, &describe);
    match (as_event, as_state) {
        (Ok(_), _) | (_, Ok(_)) => Ok(()),
        (Err(e), _) => Err(e),
    }
}

/// Checks and opens a record sealed under [`FUZZ_KEY`]: header, length, then the
/// XChaCha20-Poly1305 tag over `identity ‖ header`. Returns the opened body (still gzip
/// when the record says so). Plain records are refused, as a keyed store refuses them.
pub fn open_sealed(identity: &[u8], record: &[u8]) -> Result<Vec<u8>> {
    let keyring = Keyring::from(Some(EncryptionKey::new(FUZZ_KEY)?));
    let mut scratch = Scratch::default();
    let describe = || "fuzz record".to_owned();
    let (_, body) = envelope::open(
        identity,
        &keyring,
        Plaintext::Refuse,
        record,
        &describe,
        &mut scratch,
    )?;
    Ok(body.to_vec())
}

/// Gunzips `input` as records are inflated, refusing output above `max_len` (a gzip bomb
/// is an error, never an allocation of what it claims).
pub fn inflate(input: &[u8], max_len: usize) -> Result<Vec<u8>> {
    crate::compression::decompress(input, max_len)
}

/// The largest output [`inflate`] is asked for by event reads: an event, its meta block
/// and the meta length.
pub const INFLATE_LIMIT: usize = MAX_EVENT_SIZE + 4 + crate::codec::MAX_META_SIZE;

/// Decodes a collection-log block stored under a key, and each of its entries; returns
/// how many it holds. `input` is `[key len u8][key][block]` (the block's CRC covers its
/// key, so a fuzzer input carries both).
pub fn decode_log_block(input: &[u8]) -> Result<usize> {
    let malformed = || Error::Corrupted {
        record: "fuzz log block".into(),
        reason: "malformed block or checksum mismatch".into(),
    };
    let (&key_len, rest) = input.split_first().ok_or_else(malformed)?;
    let (key, block) = rest
        .split_at_checked(usize::from(key_len))
        .ok_or_else(malformed)?;
    let entries = crate::backend::decode_block(key, block).ok_or_else(malformed)?;
    let mut offset = 0u64;
    entries.visit(&mut |entry| {
        offset = offset.saturating_add(1);
        crate::collection_log::decode_entry(b"fuzz", offset, entry).map(|_| true)
    })?;
    Ok(entries.len())
}
