//! One record opened without knowing its type: the envelope (readable without a key),
//! then, when the record can be opened, its checks (CRC or tag, bounded inflate) and, for
//! events, the meta block of format v2 and the payload.

use crate::codec::envelope::{
    self, Header, Plaintext, Scratch, VERSION_COMPACT, VERSION_PLAIN, VERSION_WITH_META,
};
use crate::codec::{MAX_EVENT_SIZE, MAX_META_SIZE, MAX_SNAPSHOT_SIZE};
use crate::crypto::Keyring;
use crate::error::{Error, Result};
use crate::keys::{EntityKey, RecordKind};
use crate::metadata::{EventMetadata, RecordMeta};
use crate::persistent_actor::PersistentActor;
use std::time::SystemTime;

/// What a record's header says: readable without a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// Format version: 1 (payload only) or 2 (events with a meta block).
    pub format_version: u8,
    /// The body is gzip.
    pub compressed: bool,
    /// The body is sealed with XChaCha20-Poly1305.
    pub encrypted: bool,
    /// The id of the key that sealed it (`None`: not encrypted).
    pub key_id: Option<u32>,
    /// When it was written, in microseconds since the Unix epoch.
    pub timestamp_micros: u64,
}

impl Envelope {
    fn of(header: &Header) -> Self {
        Self {
            format_version: header.version,
            compressed: header.compressed(),
            encrypted: header.encrypted(),
            key_id: header.encrypted().then_some(header.key_id),
            timestamp_micros: header.timestamp_micros,
        }
    }

    /// When it was written.
    pub fn timestamp(&self) -> SystemTime {
        crate::journal::micros_to_time(self.timestamp_micros)
    }
}

/// The meta block of a format-v2 event: what was recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// The event's type name.
    pub event_type: String,
    /// The schema version its payload was written with.
    pub schema_version: u32,
    /// Tags the actor attached.
    pub tags: Vec<String>,
    /// Correlation, causation, user and tenant.
    pub metadata: EventMetadata,
}

impl From<RecordMeta> for EventMeta {
    fn from(meta: RecordMeta) -> Self {
        Self {
            event_type: meta.event_type,
            schema_version: meta.schema_version,
            tags: meta.tags,
            metadata: meta.metadata,
        }
    }
}

/// One stored event, as far as it can be read without its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// Its sequence number.
    pub sequence_number: u64,
    /// Bytes the record takes (header, body, checksum).
    pub stored_len: usize,
    /// The header (`None` when even the header is unreadable: see `problem`).
    pub envelope: Option<Envelope>,
    /// The meta block (format v2, once opened).
    pub meta: Option<EventMeta>,
    /// Bytes of the serialized event (once opened and inflated).
    pub payload_len: Option<usize>,
    /// What is wrong with the record, if anything.
    pub problem: Option<String>,
    record: String,
    payload: Option<Vec<u8>>,
}

impl RawEvent {
    /// Whether the record was opened (checked, decrypted, inflated): then it can be decoded.
    pub fn is_opened(&self) -> bool {
        self.payload.is_some()
    }

    /// Decodes the payload as `A`'s event, upcasting an older schema version with `A`'s
    /// upcasters, exactly as recovery would.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the record was not opened ([`RawEvent::is_opened`]);
    /// [`Error::Serialization`] when no upcaster chain leads from its schema version to
    /// `A`'s, or the payload does not decode as `A::Event`.
    pub fn decode<A: PersistentActor>(&self) -> Result<A::Event> {
        let describe = || self.record.clone();
        let payload = self.payload.as_deref().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{} was not opened: {}",
                self.record,
                self.problem
                    .as_deref()
                    .unwrap_or("it is encrypted and no key was given")
            ))
        })?;
        let (event_type, version) = self
            .meta
            .as_ref()
            .map_or(("", 1), |m| (m.event_type.as_str(), m.schema_version));
        let schema = crate::store::event_schema::<A>();
        let upcast =
            schema
                .upcasters
                .upcast(event_type, version, schema.version, payload, &describe)?;
        crate::codec::deserialize_exact(upcast.as_deref().unwrap_or(payload))
            .map_err(|e| Error::Serialization(format!("{}: {e}", self.record)))
    }
}

/// What opening a record gave.
pub(crate) enum Opening {
    /// Checked and opened: the header and the body, inflated (a v2 event's body still
    /// starts with its meta block).
    Opened(Header, Vec<u8>),
    /// Encrypted and no key was given: only the header and length were checked.
    Sealed,
}

/// The bound on a record's inflated body, per kind and version, as the codec reads it.
fn inflate_limit(kind: RecordKind, version: u8) -> usize {
    match kind {
        RecordKind::Event if version != VERSION_PLAIN => MAX_EVENT_SIZE + 4 + MAX_META_SIZE,
        RecordKind::Snapshot => MAX_SNAPSHOT_SIZE,
        _ => MAX_EVENT_SIZE,
    }
}

/// Checks and opens the record at `key` (plain records too, even when a key is given).
pub(crate) fn open(
    keyring: &Keyring,
    kind: RecordKind,
    key: &[u8],
    bytes: &[u8],
    describe: &dyn Fn() -> String,
    scratch: &mut Scratch,
) -> Result<Opening> {
    let corrupted = |reason: String| Error::Corrupted {
        record: describe(),
        reason,
    };
    let header = Header::parse(bytes).map_err(corrupted)?;
    if header.encrypted() && keyring.current().is_none() {
        let expected = header.len() + header.body_len as usize;
        if bytes.len() != expected {
            return Err(corrupted(format!(
                "record is {} bytes, its header declares {expected} (torn or truncated write)",
                bytes.len()
            )));
        }
        return Ok(Opening::Sealed);
    }
    let (header, body) = envelope::open(key, keyring, Plaintext::Accept, bytes, describe, scratch)?;
    let body = if header.compressed() {
        crate::compression::decompress(body, inflate_limit(kind, header.version))
            .map_err(|e| corrupted(e.to_string()))?
    } else {
        body.to_vec()
    };
    Ok(Opening::Opened(header, body))
}

/// A v2 or v3 event body split into its meta block and payload; a v1 body is all payload.
pub(crate) fn split(
    header: &Header,
    body: Vec<u8>,
) -> Result<(Option<EventMeta>, Vec<u8>), String> {
    let (meta, payload) = match header.version {
        VERSION_COMPACT => crate::codec::meta::split_v3(&body)?,
        VERSION_WITH_META => crate::codec::meta::split_v2(&body)?,
        _ => return Ok((None, body)),
    };
    Ok((Some(meta.into()), payload.to_vec()))
}

/// The reason of a record error, without the record's name in front (reports carry it).
pub(crate) fn reason(error: &Error) -> String {
    match error {
        Error::Corrupted { reason, .. } | Error::Decryption { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Reads event `seq` of `entity`. A record sealed with a key the keyring does not hold is
/// an error (the caller stops: the key is wrong); any other problem is reported in it.
pub(crate) fn raw_event(
    keyring: &Keyring,
    entity: &EntityKey,
    seq: u64,
    key: &[u8],
    bytes: &[u8],
    scratch: &mut Scratch,
) -> Result<RawEvent> {
    let describe = || entity.describe(RecordKind::Event, seq);
    let mut event = RawEvent {
        sequence_number: seq,
        stored_len: bytes.len(),
        envelope: Header::parse(bytes).ok().map(|h| Envelope::of(&h)),
        meta: None,
        payload_len: None,
        problem: None,
        record: describe(),
        payload: None,
    };
    match open(keyring, RecordKind::Event, key, bytes, &describe, scratch) {
        Ok(Opening::Sealed) => {}
        Ok(Opening::Opened(header, body)) => match split(&header, body) {
            Ok((meta, payload)) => {
                event.meta = meta;
                event.payload_len = Some(payload.len());
                event.payload = Some(payload);
            }
            Err(reason) => event.problem = Some(reason),
        },
        Err(error @ Error::Decryption { .. }) => return Err(error),
        Err(error) => event.problem = Some(reason(&error)),
    }
    Ok(event)
}
