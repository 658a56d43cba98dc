//! The versioned record envelope of FORMAT.md: a fixed 20-byte header, the body, and a
//! CRC32 trailer for records that are not encrypted (the AEAD tag replaces it otherwise).

use crate::crypto::Keyring;
use crate::error::{Error, Result};

/// Format version 1: the body is the payload (snapshots, table rows, events before v2).
pub(crate) const VERSION_PLAIN: u8 = 1;
/// Format version 2 (events): the body is `[meta len u32][meta][payload]`, the meta being
/// the event's type, schema version, tags and metadata.
pub(crate) const VERSION_WITH_META: u8 = 2;
/// Header length in bytes.
pub(crate) const HEADER_LEN: usize = 20;
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

    pub(crate) fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let (fixed, rest) = out.split_at_mut(4);
        fixed.copy_from_slice(&[self.version, self.flags, self.codec, 0]);
        let (key_id, rest) = rest.split_at_mut(4);
        key_id.copy_from_slice(&self.key_id.to_be_bytes());
        let (timestamp, body_len) = rest.split_at_mut(8);
        timestamp.copy_from_slice(&self.timestamp_micros.to_be_bytes());
        body_len.copy_from_slice(&self.body_len.to_be_bytes());
        out
    }

    /// Parses and checks a header; the reason is a sentence for `Corrupted`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| format!("record of {} bytes is shorter than its header", bytes.len()))?;
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
            header.body_len =
                u32::try_from(payload.len() + crate::crypto::NONCE_LEN + crate::crypto::TAG_LEN)
                    .map_err(too_big)?;
            let header_bytes = header.to_bytes();
            let body = key.seal(&aad(identity, &header_bytes), payload)?;
            let mut out = Vec::with_capacity(HEADER_LEN + body.len());
            out.extend_from_slice(&header_bytes);
            out.extend_from_slice(&body);
            Ok(out)
        }
        None => {
            header.body_len = u32::try_from(payload.len()).map_err(too_big)?;
            let header_bytes = header.to_bytes();
            let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + CRC_LEN);
            out.extend_from_slice(&header_bytes);
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
    let expected = HEADER_LEN + body_len + trailer;
    if record.len() != expected {
        return Err(corrupted(format!(
            "record is {} bytes, its header declares {expected} (torn or truncated write)",
            record.len()
        )));
    }
    let body = record
        .get(HEADER_LEN..HEADER_LEN + body_len)
        .ok_or_else(|| corrupted("body out of bounds".into()))?;
    if header.encrypted() {
        let header_bytes = header.to_bytes();
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
        fill_aad(&mut scratch.aad, identity, &header_bytes);
        if !key.open_into(&scratch.aad, body, &mut scratch.body, &mut scratch.subkey) {
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
        let (covered, crc_bytes) = record.split_at(HEADER_LEN + body_len);
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
fn aad(identity: &[u8], header: &[u8; HEADER_LEN]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(identity.len() + HEADER_LEN);
    fill_aad(&mut aad, identity, header);
    aad
}

fn fill_aad(aad: &mut Vec<u8>, identity: &[u8], header: &[u8; HEADER_LEN]) {
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
