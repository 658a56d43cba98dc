//! Keys as people store them: 64 hex digits (in an environment variable, or a file written
//! by `openssl rand -hex 32` or `xxd -p`) or the 32 raw bytes in a file. Error messages
//! count what they found and never quote it: a malformed key is still mostly a key.

use super::{EncryptionKey, KEY_LEN};
use crate::error::{Error, Result};
use std::path::Path;
use zeroize::Zeroizing;

/// Why some text or file is not a key. Every variant counts what it found, in the unit
/// that makes sense for it (hex digits for hex, characters for other text, bytes for a
/// file meant as raw bytes), and none shows the key's characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// Hex text (hex digits and whitespace only) has the wrong number of digits.
    #[error("{found} hex digits found, expected 64 hex digits (32 bytes)")]
    HexLength {
        /// Hex digits found.
        found: usize,
    },
    /// Text that is not all hex digits has other than 64 characters besides whitespace.
    #[error(
        "{found} characters found (whitespace aside), not all hex digits, expected 64 hex digits (32 bytes)"
    )]
    TextLength {
        /// Characters found, whitespace not counted.
        found: usize,
    },
    /// Hex digits written after `0x`, as in source code.
    #[error(
        "starts with 0x followed by {digits} hex digits: write the hex digits without the 0x (64 of them, 32 bytes)"
    )]
    HexPrefix {
        /// Hex digits after the `0x`.
        digits: usize,
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
        "holds {bytes} bytes: 32 raw key bytes followed by {}; remove it (`truncate -s 32` on the file; printf, not echo, writes none), or write the key as 64 hex digits",
        line_ending(*.bytes)
    )]
    TrailingNewline {
        /// The file's length: 33 after a newline, 34 after `\r\n`.
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
    /// when it holds neither, saying what it holds: hex digits for hex text, bytes for
    /// anything else (a raw key with a trailing newline is named as such).
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

/// How [`KeyProblem::TrailingNewline`] names what follows the 32 bytes.
fn line_ending(bytes: usize) -> &'static str {
    if bytes == KEY_LEN + 2 {
        "a line ending (\\r\\n)"
    } else {
        "a newline"
    }
}

/// Reads a key file's contents. 32 bytes are the raw key, whatever they are; otherwise
/// text made of hex digits and whitespace is hex (its problems counted in hex digits), as
/// is text of 64 characters (a hex key with a typo) or one starting with `0x`; anything
/// else, text included (a passphrase one byte short), is a raw key of the wrong length,
/// counted in bytes.
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
    let is_text = bytes
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    match std::str::from_utf8(bytes) {
        Ok(text) if is_hex_text => decode_hex(text),
        Ok(text) if is_text => match decode_hex(text) {
            Err(KeyProblem::TextLength { .. }) => Err(KeyProblem::RawLength { bytes: bytes.len() }),
            other => other,
        },
        _ => Err(KeyProblem::RawLength { bytes: bytes.len() }),
    }
}

/// 64 hex digits, whitespace ignored.
fn decode_hex(text: &str) -> Result<EncryptionKey, KeyProblem> {
    let found = text.chars().filter(|c| !c.is_whitespace()).count();
    let all_hex = text
        .chars()
        .all(|c| c.is_ascii_hexdigit() || c.is_whitespace());
    if let Some(digits) = text
        .trim_start()
        .strip_prefix("0x")
        .or_else(|| text.trim_start().strip_prefix("0X"))
        && digits
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c.is_whitespace())
    {
        return Err(KeyProblem::HexPrefix {
            digits: found.saturating_sub(2),
        });
    }
    if found != 2 * KEY_LEN {
        return Err(if all_hex {
            KeyProblem::HexLength { found }
        } else {
            KeyProblem::TextLength { found }
        });
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
