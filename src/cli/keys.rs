//! Keys come from files or environment variables, never from the command line, where
//! they would be visible to every user of the machine (`ps`) and kept in shell histories.

use std::path::Path;
use zeroize::Zeroizing;

/// A key's bytes, wiped when dropped.
pub(crate) type Secret = Zeroizing<Vec<u8>>;

/// The key from `file`, else from the environment variable `var`; `None` when neither is set.
pub(crate) fn load(file: Option<&Path>, var: &str) -> Result<Option<Secret>, String> {
    if let Some(path) = file {
        let bytes = Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?,
        );
        if bytes.len() == 32 {
            return Ok(Some(bytes));
        }
        let text = String::from_utf8_lossy(&bytes);
        return parse_hex(text.trim())
            .map(Some)
            .map_err(|why| format!("key file {}: {why}", path.display()));
    }
    match std::env::var(var) {
        Ok(text) => parse_hex(text.trim())
            .map(Some)
            .map_err(|why| format!("{var}: {why}")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{var}: not valid text")),
    }
}

/// 64 hex digits.
fn parse_hex(text: &str) -> Result<Secret, String> {
    let expected = "expected 64 hex digits (32 bytes) or, in a file, the 32 raw bytes";
    if text.len() != 64 {
        return Err(format!("{} characters found, {expected}", text.len()));
    }
    let digits: Option<Vec<u8>> = text
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect();
    digits
        .map(Zeroizing::new)
        .ok_or_else(|| format!("not hex: {expected}"))
}
