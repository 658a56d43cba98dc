//! Records to bytes and back: serialize (bincode) -> compress (adaptive gzip) -> seal
//! (checksum or AEAD) in a versioned envelope. This module does no I/O.

pub(crate) mod envelope;
pub(crate) mod meta;

use crate::compression::{self, CompressionConfig, CompressionStats};
use crate::crypto::Keyring;
use crate::error::{Error, Result};
use crate::metadata::RecordMeta;
use crate::upcast::Upcasters;
pub(crate) use envelope::Scratch;
use envelope::{Header, Plaintext, VERSION_COMPACT, VERSION_PLAIN, VERSION_WITH_META};
use serde::{Serialize, de::DeserializeOwned};
use std::borrow::Cow;
use std::sync::Arc;

/// Largest serialized event, in bytes.
pub const MAX_EVENT_SIZE: usize = 1024 * 1024;
/// Largest serialized snapshot state, in bytes.
pub const MAX_SNAPSHOT_SIZE: usize = 256 * 1024 * 1024;

/// bincode's standard configuration, with a bound on what one decode may allocate.
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_SNAPSHOT_SIZE>()
}

/// Longest meta block of an event (type name, tags, metadata), in bytes.
pub(crate) const MAX_META_SIZE: usize = 64 * 1024;

/// `value` in the payload codec (bincode).
pub(crate) fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode_config())
        .map_err(|e| Error::Serialization(e.to_string()))
}

/// Decodes `bytes` as `T`, which must consume all of them.
pub(crate) fn deserialize_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode_config())
        .map_err(|e| Error::Serialization(format!("cannot decode as this type: {e}")))?;
    if read != bytes.len() {
        return Err(Error::Serialization(format!(
            "{} trailing bytes after the value (does the type match?)",
            bytes.len() - read
        )));
    }
    Ok(value)
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

/// An opened record: its timestamp, meta (events; the v1 default otherwise) and value.
#[derive(Debug)]
pub(crate) struct Decoded<T> {
    pub(crate) timestamp_micros: u64,
    pub(crate) meta: RecordMeta,
    pub(crate) value: T,
}

/// The event schema a store reads into: its current version and the upcasters from older ones.
#[derive(Clone, Debug)]
pub(crate) struct EventSchema {
    pub(crate) version: u32,
    pub(crate) upcasters: Arc<Upcasters>,
}

impl Default for EventSchema {
    fn default() -> Self {
        Self {
            version: 1,
            upcasters: Arc::default(),
        }
    }
}

/// Settings for turning values into records of one entity.
#[derive(Clone, Debug, Default)]
pub(crate) struct Codec {
    pub(crate) keyring: Keyring,
    pub(crate) compression: Option<CompressionConfig>,
    pub(crate) schema: EventSchema,
}

impl Codec {
    /// Encodes `value` as a format-v1 record at `identity` (snapshots, table rows);
    /// `max_len` bounds the serialized size.
    pub(crate) fn encode<T: Serialize>(
        &self,
        identity: &[u8],
        timestamp_micros: u64,
        value: &T,
        max_len: usize,
    ) -> Result<Encoded> {
        let serialized = serialize(value)?;
        check_size(serialized.len(), max_len)?;
        self.seal_serialized(identity, VERSION_PLAIN, timestamp_micros, &serialized)
    }

    /// Encodes an event with its meta block as a format-v3 record.
    pub(crate) fn encode_event<E: Serialize>(
        &self,
        identity: &[u8],
        timestamp_micros: u64,
        meta: &RecordMeta,
        event: &E,
    ) -> Result<Encoded> {
        let mut body = Vec::with_capacity(128);
        let meta_len = meta::encode_v3(meta, &mut body);
        if meta_len > MAX_META_SIZE {
            return Err(Error::InvalidArgument(format!(
                "event type, tags and metadata take {meta_len} bytes, the limit is {MAX_META_SIZE}"
            )));
        }
        bincode::serde::encode_into_std_write(event, &mut body, bincode_config())
            .map_err(|e| Error::Serialization(e.to_string()))?;
        check_size(body.len() - meta_len, MAX_EVENT_SIZE)?;
        self.seal_serialized(identity, VERSION_COMPACT, timestamp_micros, &body)
    }

    fn seal_serialized(
        &self,
        identity: &[u8],
        version: u8,
        timestamp_micros: u64,
        serialized: &[u8],
    ) -> Result<Encoded> {
        let compressed = self
            .compression
            .as_ref()
            .and_then(|config| compression::compress_if_worth_it(serialized, config));
        let (payload, is_compressed) = match &compressed {
            Some(packed) => (packed.as_slice(), true),
            None => (serialized, false),
        };
        let bytes = envelope::seal(
            identity,
            &self.keyring,
            version,
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

    /// Checks, opens and deserializes the format-v1 record at `identity`.
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        identity: &[u8],
        record: &[u8],
        max_len: usize,
        describe: &dyn Fn() -> String,
    ) -> Result<Decoded<T>> {
        self.decode_with(identity, record, max_len, describe, &mut Scratch::default())
    }

    /// [`Codec::decode`] with buffers reused across records.
    pub(crate) fn decode_with<T: DeserializeOwned>(
        &self,
        identity: &[u8],
        record: &[u8],
        max_len: usize,
        describe: &dyn Fn() -> String,
        scratch: &mut Scratch,
    ) -> Result<Decoded<T>> {
        let (header, serialized) = self.open(identity, record, max_len, describe, scratch)?;
        if header.version != VERSION_PLAIN {
            return Err(Error::Corrupted {
                record: describe(),
                reason: format!(
                    "format version {} where version 1 is expected",
                    header.version
                ),
            });
        }
        let value = deserialize_exact(&serialized).map_err(|e| in_record(describe, &e))?;
        Ok(Decoded {
            timestamp_micros: header.timestamp_micros,
            meta: RecordMeta::legacy(),
            value,
        })
    }

    /// Opens an event record (format v1 or v2), upcasts an older schema version, and
    /// decodes it, when `accept` takes its timestamp and meta; `None` otherwise (the
    /// payload is then not decoded). Replay allocates only what the decoded values own.
    pub(crate) fn decode_event_if<E: DeserializeOwned>(
        &self,
        identity: &[u8],
        record: &[u8],
        describe: &dyn Fn() -> String,
        scratch: &mut Scratch,
        accept: &mut dyn FnMut(u64, &RecordMeta) -> bool,
    ) -> Result<Option<Decoded<E>>> {
        let (header, body) = self.open(identity, record, MAX_EVENT_SIZE, describe, scratch)?;
        let split = match header.version {
            VERSION_COMPACT => meta::split_v3(&body),
            VERSION_WITH_META => meta::split_v2(&body),
            _ => Ok((RecordMeta::legacy(), &body[..])),
        };
        let (meta, payload) = split.map_err(|reason| Error::Corrupted {
            record: describe(),
            reason,
        })?;
        if !accept(header.timestamp_micros, &meta) {
            return Ok(None);
        }
        let upcast = self.schema.upcasters.upcast(
            &meta.event_type,
            meta.schema_version,
            self.schema.version,
            payload,
            describe,
        )?;
        let value = deserialize_exact(upcast.as_deref().unwrap_or(payload))
            .map_err(|e| in_record(describe, &e))?;
        Ok(Some(Decoded {
            timestamp_micros: header.timestamp_micros,
            meta,
            value,
        }))
    }

    /// The event's value alone, for replay: as [`Codec::decode_event_with`], but of the
    /// meta block only the type name and the schema version are read (what upcasting
    /// needs), borrowed; its tags and metadata are not decoded. The record's tag or CRC
    /// still covers every byte of it.
    pub(crate) fn decode_event_value<E: DeserializeOwned>(
        &self,
        identity: &[u8],
        record: &[u8],
        describe: &dyn Fn() -> String,
        scratch: &mut Scratch,
    ) -> Result<E> {
        let (header, body) = self.open(identity, record, MAX_EVENT_SIZE, describe, scratch)?;
        let split = match header.version {
            VERSION_COMPACT => meta::split_head_v3(&body),
            VERSION_WITH_META => meta::split_head_v2(&body),
            _ => Ok((
                meta::MetaHead {
                    event_type: "",
                    schema_version: 1,
                },
                &body[..],
            )),
        };
        let (
            meta::MetaHead {
                event_type,
                schema_version,
            },
            payload,
        ) = split.map_err(|reason| Error::Corrupted {
            record: describe(),
            reason,
        })?;
        let upcast = self.schema.upcasters.upcast(
            event_type,
            schema_version,
            self.schema.version,
            payload,
            describe,
        )?;
        deserialize_exact(upcast.as_deref().unwrap_or(payload)).map_err(|e| in_record(describe, &e))
    }

    /// [`Codec::decode_event_if`] accepting every event.
    pub(crate) fn decode_event_with<E: DeserializeOwned>(
        &self,
        identity: &[u8],
        record: &[u8],
        describe: &dyn Fn() -> String,
        scratch: &mut Scratch,
    ) -> Result<Decoded<E>> {
        self.decode_event_if(identity, record, describe, scratch, &mut |_, _| true)?
            .ok_or_else(|| Error::storage("decode event", "accepting filter refused"))
    }

    /// The header and the serialized body (inflated when compressed).
    fn open<'a>(
        &self,
        identity: &[u8],
        record: &'a [u8],
        max_len: usize,
        describe: &dyn Fn() -> String,
        scratch: &'a mut Scratch,
    ) -> Result<(Header, Cow<'a, [u8]>)> {
        let (header, body) = envelope::open(
            identity,
            &self.keyring,
            Plaintext::Refuse,
            record,
            describe,
            scratch,
        )?;
        if !header.compressed() {
            return Ok((header, Cow::Borrowed(body)));
        }
        // A v2 or v3 body carries its meta block beyond the payload limit.
        let limit = if header.version == VERSION_PLAIN {
            max_len
        } else {
            max_len + 4 + MAX_META_SIZE
        };
        let inflated = compression::decompress(body, limit).map_err(|e| Error::Corrupted {
            record: describe(),
            reason: e.to_string(),
        })?;
        Ok((header, Cow::Owned(inflated)))
    }

    /// Opens a record (plain ones too) and seals its body again with the current key,
    /// keeping version, timestamp and compression. `None` when it is already sealed with
    /// that key.
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
            header.version,
            header.compressed(),
            header.timestamp_micros,
            body,
        )
        .map(Some)
    }
}

fn check_size(len: usize, max_len: usize) -> Result<()> {
    if len > max_len {
        return Err(Error::InvalidArgument(format!(
            "serialized record is {len} bytes, the limit is {max_len}"
        )));
    }
    Ok(())
}

fn in_record(describe: &dyn Fn() -> String, error: &Error) -> Error {
    match error {
        Error::Serialization(reason) => Error::Serialization(format!("{}: {reason}", describe())),
        other => Error::Serialization(format!("{}: {other}", describe())),
    }
}

#[cfg(test)]
mod tests;
