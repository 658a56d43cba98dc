//! Keys come from files or environment variables, never from the command line, where
//! they would be visible to every user of the machine (`ps`) and kept in shell histories.
//! Each key is parsed once, into the one keyring the inspector opens records with.

use super::args::{Args, Command};
use rush_store::{EncryptionKey, Error, Keyring};
use std::path::Path;
use zeroize::Zeroizing;

/// The keys of one command line.
pub(crate) struct Keys {
    /// The database's key (`--key-file`, `RUSH_KEY`) and the older ones that still open
    /// records of an unfinished rotation (`--old-key-file`, `RUSH_OLD_KEY`); for
    /// `rotate-key`, also the new key, which opens what an interrupted run already sealed.
    pub(crate) keyring: Keyring,
    /// `rotate-key`'s new key (`--new-key-file`, `RUSH_NEW_KEY`).
    pub(crate) new_key: Option<EncryptionKey>,
}

/// Reads every key the command line names.
pub(crate) fn load(args: &Args) -> Result<Keys, String> {
    let mut keyring = Keyring::from(load_one(args.key_file.as_deref(), "RUSH_KEY")?);
    for file in &args.old_key_file {
        keyring.add_decryption_key(from_file(file)?);
    }
    if args.old_key_file.is_empty() {
        keyring = keyring.with_decryption_keys(load_one(None, "RUSH_OLD_KEY")?);
    }
    let mut new_key = None;
    if let Command::RotateKey { new_key_file } = &args.command {
        new_key = load_one(new_key_file.as_deref(), "RUSH_NEW_KEY")?;
        keyring = keyring.with_decryption_keys(new_key.clone());
    }
    Ok(Keys { keyring, new_key })
}

/// The key from `file`, else from the environment variable `var` (hex); `None` when
/// neither is set.
fn load_one(file: Option<&Path>, var: &str) -> Result<Option<EncryptionKey>, String> {
    if let Some(path) = file {
        return from_file(path).map(Some);
    }
    match std::env::var(var).map(Zeroizing::new) {
        Ok(text) => match EncryptionKey::from_hex(&text) {
            Ok(key) => Ok(Some(key)),
            Err(Error::InvalidKeyText { problem }) => Err(format!("{var}: {problem}")),
            Err(other) => Err(format!("{var}: {other}")),
        },
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{var}: not valid text")),
    }
}

/// 32 raw bytes or 64 hex digits; the error names the file and counts what it holds.
fn from_file(path: &Path) -> Result<EncryptionKey, String> {
    EncryptionKey::from_file(path).map_err(|e| e.to_string())
}
