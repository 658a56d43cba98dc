//! Recognising sled's `db` file before sled touches it. sled 0.34.7 opens a `db` file in
//! which it finds no valid segment as a new, empty database and overwrites it: garbage (or
//! another file copied over it) would silently become an empty database, and the damaged
//! file would be gone. So before sled opens a folder, its `db` must hold at least one
//! segment whose header checksum is right; otherwise the open is refused as damage and the
//! file is left as it was.
//!
//! A segment header is 20 bytes at the start of each segment (`segment_size` from `conf`,
//! 512 KiB by default): a CRC-32 of the next 16 bytes, stored little-endian and inverted,
//! then two inverted little-endian LSNs (sled 0.34.7, `pagecache/logger.rs`). Freed
//! segments may be zeroed, so any one valid header is enough.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

/// sled's default segment size, used when `conf` does not say.
const DEFAULT_SEGMENT_SIZE: u64 = 512 * 1024;
const HEADER_LEN: usize = 20;

/// Fails with [`Error::Corrupted`] when `folder/db` is not empty and holds no valid sled
/// segment header. A missing or empty `db` (a database not created, or created with
/// nothing written yet) is fine.
pub(crate) fn check_db_file(folder: &Path) -> Result<()> {
    let path = folder.join("db");
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::from_io("open sled's db file", &e)),
    };
    let len = file
        .metadata()
        .map_err(|e| Error::from_io("read sled's db file", &e))?
        .len();
    if len == 0 {
        return Ok(());
    }
    let segment = segment_size(folder);
    let mut header = [0u8; HEADER_LEN];
    let mut offset = 0u64;
    while offset.saturating_add(HEADER_LEN as u64) <= len {
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut header))
            .map_err(|e| Error::from_io("read sled's db file", &e))?;
        if header_is_valid(&header) {
            return Ok(());
        }
        offset = offset.saturating_add(segment);
    }
    Err(Error::Corrupted {
        record: format!("sled's file {}", path.display()),
        reason: format!(
            "none of its {len} bytes holds a valid sled segment header: it is not a sled \
             database or is damaged throughout (left untouched; sled would have formatted \
             it as a new, empty database)"
        ),
    })
}

fn header_is_valid(header: &[u8; HEADER_LEN]) -> bool {
    let (stored, rest) = header.split_at(4);
    let Ok(stored) = <[u8; 4]>::try_from(stored) else {
        return false;
    };
    u32::from_le_bytes(stored) ^ 0xFFFF_FFFF == crc32fast::hash(rest)
}

/// `segment_size` from sled's `conf` (lines of `key: value`), or sled's default.
fn segment_size(folder: &Path) -> u64 {
    std::fs::read_to_string(folder.join("conf"))
        .ok()
        .and_then(|conf| {
            conf.lines()
                .find_map(|line| line.strip_prefix("segment_size:"))
                .and_then(|value| value.trim().parse::<u64>().ok())
        })
        .filter(|&size| size >= HEADER_LEN as u64)
        .unwrap_or(DEFAULT_SEGMENT_SIZE)
}
