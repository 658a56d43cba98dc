//! Keys as people store them: 64 hex digits (in an environment variable, or a file written
//! by `openssl rand -hex 32` or `xxd -p`) or the 32 raw bytes in a file. Error messages
//! count what they found and never quote it: a malformed key is still mostly a key.

use super::{EncryptionKey, KEY_LEN};
use crate::error::{Error, Result};
use std::path::Path;
use zeroize::Zeroizing;

/// Why some text or file is not a key. Every variant counts what it found, in the unit
/// that makes sense for it, and none shows the key's characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// Hex text has the wrong number of characters (whitespace not counted).
    #[error("{found} characters found, expected 64 hex digits (32 bytes)")]
    HexLength {
        /// Characters found, whitespace not counted.
        found: usize,
    },
    /// Hex text has 64 characters, but one of them is not a hex digit.
    #[error("character {position} is not a hex digit, expected 64 hex digits (32 bytes)")]
    NotHex {
        /// Its position among the characters that are not whitespace, from 1.
        position: usize,
    },
    /// A file holds 32 bytes followed by a line ending (`echo` adds one): a raw key file
    /// must hold exactly the key.
    #[error(
        "holds {bytes} bytes: a 32-byte raw key followed by a newline; write the raw key without a newline (printf, not echo), or as 64 hex digits"
    )]
    TrailingNewline {
        /// The file's length.
        bytes: usize,
    },
    /// A file that is not hex text holds other than 32 bytes.
    #[error("holds {bytes} bytes, expected the 32 raw bytes of a key or 64 hex digits")]
    RawLength {
        /// The file's length.
        bytes: usize,
    },
}

impl EncryptionKey {
    /// The key written as 64 hex digits (either case). Whitespace around and between the
    /// digits is ignored, so `xxd -p`'s two lines and a trailing newline are fine.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKeyText`] for anything else, saying what is wrong with it.
    pub fn from_hex(text: &str) -> Result<Self> {
        decode_hex(text).map_err(|problem| Error::InvalidKeyText { problem })
    }

    /// The key in the file at `path`: exactly 32 raw bytes, or 64 hex digits as
    /// [`EncryptionKey::from_hex`] reads them.
    ///
    /// # Errors
    ///
    /// [`Error::KeyFileUnreadable`] when the file cannot be read; [`Error::InvalidKeyFile`]
    /// when it holds neither, saying what it holds in bytes (a raw key with a trailing
    /// newline is named as such).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes =
            Zeroizing::new(
                std::fs::read(path).map_err(|source| Error::KeyFileUnreadable {
                    path: path.to_owned(),
                    kind: source.kind(),
                    message: source.to_string(),
                })?,
            );
        from_file_bytes(&bytes).map_err(|problem| Error::InvalidKeyFile {
            path: path.to_owned(),
            problem,
        })
    }
}

/// Reads a key file's contents. 32 bytes are the raw key, whatever they are; otherwise
/// text made of hex digits and whitespace is hex, and anything else is a raw key of the
/// wrong length.
fn from_file_bytes(bytes: &[u8]) -> Result<EncryptionKey, KeyProblem> {
    if let Ok(raw) = <&[u8; KEY_LEN]>::try_from(bytes) {
        return Ok(EncryptionKey::parse(raw));
    }
    let is_hex_text = bytes
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    let without_newline = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"));
    if !is_hex_text && without_newline.is_some_and(|key| key.len() == KEY_LEN) {
        return Err(KeyProblem::TrailingNewline { bytes: bytes.len() });
    }
    // Printable text is a hex key with a typo; anything else was meant as raw bytes.
    let is_text = bytes
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    match std::str::from_utf8(bytes) {
        Ok(text) if is_text => decode_hex(text),
        _ => Err(KeyProblem::RawLength { bytes: bytes.len() }),
    }
}

/// 64 hex digits, whitespace ignored.
fn decode_hex(text: &str) -> Result<EncryptionKey, KeyProblem> {
    let found = text.chars().filter(|c| !c.is_whitespace()).count();
    if found != 2 * KEY_LEN {
        return Err(KeyProblem::HexLength { found });
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    let digits = text.chars().filter(|c| !c.is_whitespace());
    for (position, c) in digits.enumerate() {
        let value = c.to_digit(16).ok_or(KeyProblem::NotHex {
            position: position.saturating_add(1),
        })?;
        if let Some(byte) = key.get_mut(position / 2) {
            // A hex digit is below 16: the cast cannot truncate.
            *byte = (*byte << 4) | value as u8;
        }
    }
    Ok(EncryptionKey::parse(&key))
}
