//! Records to bytes and back: serialize (bincode) -> compress (adaptive gzip) -> seal
//! (checksum or AEAD) in a versioned envelope. This module does no I/O.

pub(crate) mod envelope;

use crate::compression::{self, CompressionConfig, CompressionStats};
use crate::crypto::Keyring;
use crate::error::{Error, Result};
pub(crate) use envelope::Scratch;
use envelope::{Header, Plaintext};
use serde::{Serialize, de::DeserializeOwned};

/// Largest serialized event, in bytes.
pub const MAX_EVENT_SIZE: usize = 1024 * 1024;
/// Largest serialized snapshot state, in bytes.
pub const MAX_SNAPSHOT_SIZE: usize = 256 * 1024 * 1024;

/// bincode's standard configuration, with a bound on what one decode may allocate.
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_SNAPSHOT_SIZE>()
}

/// A record and what its compression did, for the statistics.
pub(crate) struct Encoded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) serialized_len: usize,
    pub(crate) payload_len: usize,
    pub(crate) compressed: bool,
}

impl Encoded {
    pub(crate) fn count_in(&self, stats: &mut CompressionStats) {
        stats.record(self.serialized_len, self.payload_len, self.compressed);
    }
}

/// An opened record: its timestamp and value.
#[derive(Debug)]
pub(crate) struct Decoded<T> {
    pub(crate) timestamp_micros: u64,
    pub(crate) value: T,
}

/// Settings for turning values into records of one entity.
#[derive(Clone, Debug)]
pub(crate) struct Codec {
    pub(crate) keyring: Keyring,
    pub(crate) compression: Option<CompressionConfig>,
}

impl Codec {
    /// Encodes `value` as the record at `identity`; `max_len` bounds the serialized size.
    pub(crate) fn encode<T: Serialize>(
        &self,
        identity: &[u8],
        timestamp_micros: u64,
        value: &T,
        max_len: usize,
    ) -> Result<Encoded> {
        let serialized = bincode::serde::encode_to_vec(value, bincode_config())
            .map_err(|e| Error::Serialization(e.to_string()))?;
        if serialized.len() > max_len {
            return Err(Error::InvalidArgument(format!(
                "serialized record is {} bytes, the limit is {max_len}",
                serialized.len()
            )));
        }
        let compressed = self
            .compression
            .as_ref()
            .and_then(|config| compression::compress_if_worth_it(&serialized, config));
        let (payload, is_compressed) = match &compressed {
            Some(packed) => (packed.as_slice(), true),
            None => (serialized.as_slice(), false),
        };
        let bytes = envelope::seal(
            identity,
            &self.keyring,
            is_compressed,
            timestamp_micros,
            payload,
        )?;
        Ok(Encoded {
            serialized_len: serialized.len(),
            payload_len: payload.len(),
            compressed: is_compressed,
            bytes,
        })
    }

    /// Checks, opens and deserializes the record at `identity`.
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        identity: &[u8],
        record: &[u8],
        max_len: usize,
        describe: &dyn Fn() -> String,
    ) -> Result<Decoded<T>> {
        self.decode_with(identity, record, max_len, describe, &mut Scratch::default())
    }

    /// [`Codec::decode`] with buffers reused across records (replay allocates only what
    /// the decoded values own).
    pub(crate) fn decode_with<T: DeserializeOwned>(
        &self,
        identity: &[u8],
        record: &[u8],
        max_len: usize,
        describe: &dyn Fn() -> String,
        scratch: &mut Scratch,
    ) -> Result<Decoded<T>> {
        let (header, body) = envelope::open(
            identity,
            &self.keyring,
            Plaintext::Refuse,
            record,
            describe,
            scratch,
        )?;
        let inflated;
        let serialized = if header.compressed() {
            inflated = compression::decompress(body, max_len).map_err(|e| Error::Corrupted {
                record: describe(),
                reason: e.to_string(),
            })?;
            inflated.as_slice()
        } else {
            body
        };
        let (value, read) = bincode::serde::decode_from_slice(serialized, bincode_config())
            .map_err(|e| {
                Error::Serialization(format!("{}: cannot decode as this type: {e}", describe()))
            })?;
        if read != serialized.len() {
            return Err(Error::Serialization(format!(
                "{}: {} trailing bytes after the value (does the type match?)",
                describe(),
                serialized.len() - read
            )));
        }
        Ok(Decoded {
            timestamp_micros: header.timestamp_micros,
            value,
        })
    }

    /// Opens a record (plain ones too) and seals its body again with the current key,
    /// keeping timestamp and compression. `None` when it is already sealed with that key.
    pub(crate) fn reseal(
        &self,
        identity: &[u8],
        record: &[u8],
        describe: &dyn Fn() -> String,
    ) -> Result<Option<Vec<u8>>> {
        let current = self.keyring.current().map(crate::crypto::EncryptionKey::id);
        if let Ok(header) = Header::parse(record)
            && header.encrypted()
            && Some(header.key_id) == current
        {
            return Ok(None);
        }
        let mut scratch = Scratch::default();
        let (header, body) = envelope::open(
            identity,
            &self.keyring,
            Plaintext::Accept,
            record,
            describe,
            &mut scratch,
        )?;
        envelope::seal(
            identity,
            &self.keyring,
            header.compressed(),
            header.timestamp_micros,
            body,
        )
        .map(Some)
    }
}

#[cfg(test)]
mod tests;
