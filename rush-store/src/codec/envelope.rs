//! The versioned record envelope of FORMAT.md: a header (20 bytes in versions 1 and 2, 10
//! or 14 in version 3), the body, and a CRC32 trailer for records that are not encrypted
//! (the AEAD tag replaces it otherwise).

use crate::crypto::Keyring;
use crate::error::{Error, Result};

/// Format version 1: the body is the payload (snapshots, table rows, events before v2).
pub(crate) const VERSION_PLAIN: u8 = 1;
/// Format version 2 (events): the body is `[meta len u32][meta][payload]`, the meta being
/// the event's type, schema version, tags and metadata.
pub(crate) const VERSION_WITH_META: u8 = 2;
/// Format version 3 (events): a compact header (no codec, reserved or length fields; a key
/// id only when sealed), 12 bytes of nonce material instead of 24, and the compact meta
/// block of `codec::meta`.
pub(crate) const VERSION_COMPACT: u8 = 3;
/// Header length in bytes of versions 1 and 2, the longest header.
pub(crate) const HEADER_LEN: usize = 20;
/// Header length of a version-3 record that is not encrypted: version, flags, timestamp.
const COMPACT_HEADER_LEN: usize = 10;
/// CRC32 trailer length, for records that are not encrypted.
pub(crate) const CRC_LEN: usize = 4;

/// Body is gzip.
pub(crate) const FLAG_COMPRESSED: u8 = 0b01;
/// Body is `nonce || XChaCha20-Poly1305 ciphertext || tag`.
pub(crate) const FLAG_ENCRYPTED: u8 = 0b10;
const KNOWN_FLAGS: u8 = FLAG_COMPRESSED | FLAG_ENCRYPTED;

/// Payload codec: bincode 2 over serde, standard configuration (varints, little-endian).
pub(crate) const CODEC_BINCODE: u8 = 1;

/// The fixed-size header in front of every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u8,
    pub(crate) flags: u8,
    pub(crate) codec: u8,
    pub(crate) key_id: u32,
    pub(crate) timestamp_micros: u64,
    pub(crate) body_len: u32,
}

impl Header {
    pub(crate) fn compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    pub(crate) fn encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }

    /// The header's length in bytes.
    pub(crate) fn len(&self) -> usize {
        match (self.version, self.encrypted()) {
            (VERSION_COMPACT, true) => COMPACT_HEADER_LEN + 4,
            (VERSION_COMPACT, false) => COMPACT_HEADER_LEN,
            _ => HEADER_LEN,
        }
    }

    /// The header as stored.
    pub(crate) fn to_bytes(self) -> HeaderBytes {
        HeaderBytes {
            bytes: self.layout(),
            len: self.len(),
        }
    }

    /// The header's bytes, in the first [`Header::len`] bytes of the array.
    fn layout(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        if self.version == VERSION_COMPACT {
            let (fixed, rest) = out.split_at_mut(2);
            fixed.copy_from_slice(&[self.version, self.flags]);
            let rest = if self.encrypted() {
                let (key_id, rest) = rest.split_at_mut(4);
                key_id.copy_from_slice(&self.key_id.to_be_bytes());
                rest
            } else {
                rest
            };
            if let Some(timestamp) = rest.get_mut(..8) {
                timestamp.copy_from_slice(&self.timestamp_micros.to_be_bytes());
            }
            return out;
        }
        let (fixed, rest) = out.split_at_mut(4);
        fixed.copy_from_slice(&[self.version, self.flags, self.codec, 0]);
        let (key_id, rest) = rest.split_at_mut(4);
        key_id.copy_from_slice(&self.key_id.to_be_bytes());
        let (timestamp, body_len) = rest.split_at_mut(8);
        timestamp.copy_from_slice(&self.timestamp_micros.to_be_bytes());
        body_len.copy_from_slice(&self.body_len.to_be_bytes());
        out
    }

    /// Parses and checks the header of `record` (the whole record: a version-3 header
    /// has no length field, the body is what follows it); the reason is a sentence for
    /// `Corrupted`.
    pub(crate) fn parse(record: &[u8]) -> Result<Self, String> {
        if record.first() == Some(&VERSION_COMPACT) {
            return Self::parse_compact(record);
        }
        let header: &[u8; HEADER_LEN] = record
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| {
                format!(
                    "record of {} bytes is shorter than its header",
                    record.len()
                )
            })?;
        let [
            version,
            flags,
            codec,
            reserved,
            k0,
            k1,
            k2,
            k3,
            t0,
            t1,
            t2,
            t3,
            t4,
            t5,
            t6,
            t7,
            l0,
            l1,
            l2,
            l3,
        ] = *header;
        if !(VERSION_PLAIN..=VERSION_WITH_META).contains(&version) {
            return Err(format!("unknown format version {version}"));
        }
        if flags & !KNOWN_FLAGS != 0 || reserved != 0 {
            return Err(format!(
                "unknown flags {flags:#04x} or reserved byte {reserved}"
            ));
        }
        if codec != CODEC_BINCODE {
            return Err(format!("unknown payload codec {codec}"));
        }
        Ok(Self {
            version,
            flags,
            codec,
            key_id: u32::from_be_bytes([k0, k1, k2, k3]),
            timestamp_micros: u64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
            body_len: u32::from_be_bytes([l0, l1, l2, l3]),
        })
    }

    /// `[3][flags][key id u32, when encrypted][timestamp u64]`; the body length is what
    /// the record holds after the header (and before the CRC of a plain record).
    fn parse_compact(record: &[u8]) -> Result<Self, String> {
        let short = || {
            format!(
                "record of {} bytes is shorter than its header",
                record.len()
            )
        };
        let (&[version, flags], rest) = record.split_first_chunk::<2>().ok_or_else(short)?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(format!("unknown flags {flags:#04x}"));
        }
        let encrypted = flags & FLAG_ENCRYPTED != 0;
        let (key_id, rest) = if encrypted {
            let (key_id, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
            (u32::from_be_bytes(*key_id), rest)
        } else {
            (0, rest)
        };
        let (timestamp, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
        let trailer = if encrypted { 0 } else { CRC_LEN };
        let body_len = rest
            .len()
            .checked_sub(trailer)
            .and_then(|len| u32::try_from(len).ok())
            .ok_or_else(|| {
                format!(
                    "record of {} bytes has no room for its checksum",
                    record.len()
                )
            })?;
        Ok(Self {
            version,
            flags,
            codec: CODEC_BINCODE,
            key_id,
            timestamp_micros: u64::from_be_bytes(*timestamp),
            body_len,
        })
    }
}

/// A header's bytes as stored.
pub(crate) struct HeaderBytes {
    bytes: [u8; HEADER_LEN],
    len: usize,
}

impl HeaderBytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&self.bytes)
    }
}

/// Wraps `payload` (already compressed or not, as `flags` says) into a record.
/// When the keyring has a current key the record is sealed with it.
pub(crate) fn seal(
    identity: &[u8],
    keyring: &Keyring,
    version: u8,
    compressed: bool,
    timestamp_micros: u64,
    payload: &[u8],
) -> Result<Vec<u8>> {
    let mut header = Header {
        version,
        flags: if compressed { FLAG_COMPRESSED } else { 0 },
        codec: CODEC_BINCODE,
        key_id: 0,
        timestamp_micros,
        body_len: 0,
    };
    let too_big =
        |_| Error::InvalidArgument(format!("record of {} bytes is too large", payload.len()));
    match keyring.current() {
        Some(key) => {
            header.flags |= FLAG_ENCRYPTED;
            header.key_id = key.id();
            let nonce_len = if version == VERSION_COMPACT {
                crate::crypto::NONCE_MATERIAL_LEN
            } else {
                crate::crypto::NONCE_LEN
            };
            let sealed_len = payload.len() + nonce_len + crate::crypto::TAG_LEN;
            header.body_len = u32::try_from(sealed_len).map_err(too_big)?;
            let header_bytes = header.to_bytes();
            let header_bytes = header_bytes.as_slice();
            let aad = aad(identity, header_bytes);
            let mut out = Vec::with_capacity(header_bytes.len() + sealed_len);
            out.extend_from_slice(header_bytes);
            if version == VERSION_COMPACT {
                key.seal_compact_into(&aad, timestamp_micros, payload, &mut out)?;
            } else {
                out.extend_from_slice(&key.seal(&aad, payload)?);
            }
            Ok(out)
        }
        None => {
            header.body_len = u32::try_from(payload.len()).map_err(too_big)?;
            let header_bytes = header.to_bytes();
            let header_bytes = header_bytes.as_slice();
            let mut out = Vec::with_capacity(header_bytes.len() + payload.len() + CRC_LEN);
            out.extend_from_slice(header_bytes);
            out.extend_from_slice(payload);
            let crc = checksum(identity, &out);
            out.extend_from_slice(&crc.to_be_bytes());
            Ok(out)
        }
    }
}

/// Whether a store with a key may read records that are not encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plaintext {
    /// A keyed store refuses them: anyone who can write the database could forge them.
    Refuse,
    /// Key rotation reads them to encrypt them.
    Accept,
}

/// Buffers reused from one record to the next while reading many.
#[derive(Default)]
pub(crate) struct Scratch {
    aad: Vec<u8>,
    subkey: Option<crate::crypto::SubkeyCache>,
    /// The plain body of the last opened encrypted record.
    body: Vec<u8>,
}

/// Checks a record's integrity and opens it: the header and the plain body (still gzip
/// when `header.compressed()`), which borrows from `record` or from `scratch`.
pub(crate) fn open<'a>(
    identity: &[u8],
    keyring: &Keyring,
    plaintext: Plaintext,
    record: &'a [u8],
    describe: &dyn Fn() -> String,
    scratch: &'a mut Scratch,
) -> Result<(Header, &'a [u8])> {
    let corrupted = |reason: String| Error::Corrupted {
        record: describe(),
        reason,
    };
    let header = Header::parse(record).map_err(corrupted)?;
    let body_len = header.body_len as usize;
    let trailer = if header.encrypted() { 0 } else { CRC_LEN };
    let header_len = header.len();
    let expected = header_len + body_len + trailer;
    if record.len() != expected {
        return Err(corrupted(format!(
            "record is {} bytes, its header declares {expected} (torn or truncated write)",
            record.len()
        )));
    }
    let (Some(header_bytes), Some(body)) = (
        record.get(..header_len),
        record.get(header_len..header_len + body_len),
    ) else {
        return Err(corrupted("body out of bounds".into()));
    };
    if header.encrypted() {
        let Some(key) = keyring.find(header.key_id) else {
            let reason = if keyring.current().is_none() {
                "record is encrypted and this store has no key".to_owned()
            } else {
                let held: Vec<String> = keyring.key_ids().map(|id| format!("{id:08x}")).collect();
                format!(
                    "record is sealed with key id {:08x}, which this store does not hold (it holds {}): wrong key? after a key rotation that did not finish, add the older key as a decryption key",
                    header.key_id,
                    held.join(", ")
                )
            };
            return Err(Error::Decryption {
                record: describe(),
                reason,
            });
        };
        fill_aad(&mut scratch.aad, identity, header_bytes);
        let opened = if header.version == VERSION_COMPACT {
            key.open_compact_into(
                &scratch.aad,
                header.timestamp_micros,
                body,
                &mut scratch.body,
                &mut scratch.subkey,
            )
        } else {
            key.open_into(&scratch.aad, body, &mut scratch.body, &mut scratch.subkey)
        };
        if !opened {
            return Err(corrupted(
                "authentication tag does not verify (tampered, or moved from another record)"
                    .into(),
            ));
        }
        Ok((header, &scratch.body))
    } else {
        if keyring.current().is_some() && plaintext == Plaintext::Refuse {
            return Err(Error::Decryption {
                record: describe(),
                reason: "record is not encrypted but this store requires encryption (finish the migration with rotate_encryption_key)".into(),
            });
        }
        let (covered, crc_bytes) = record
            .split_at_checked(header_len + body_len)
            .ok_or_else(|| corrupted("checksum missing".into()))?;
        let stored = u32::from_be_bytes(
            crc_bytes
                .try_into()
                .map_err(|_| corrupted("checksum missing".into()))?,
        );
        if checksum(identity, covered) != stored {
            return Err(corrupted(
                "checksum does not match (tampered, or moved from another record)".into(),
            ));
        }
        Ok((header, body))
    }
}

/// Associated data: the record's identity (its storage key) and its whole header.
fn aad(identity: &[u8], header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(identity.len() + HEADER_LEN);
    fill_aad(&mut aad, identity, header);
    aad
}

fn fill_aad(aad: &mut Vec<u8>, identity: &[u8], header: &[u8]) {
    aad.clear();
    aad.extend_from_slice(identity);
    aad.extend_from_slice(header);
}

/// CRC32 over the identity, then header and body, so a plain record also fails its check
/// when copied to another key.
fn checksum(identity: &[u8], header_and_body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(identity);
    hasher.update(header_and_body);
    hasher.finalize()
}
