//! The key space by kind: what a key is (FORMAT.md's layout, parsed back), a readable
//! name for it, and a walk over key ranges that reports progress and can be stopped.

use crate::backend::Backend;
use crate::error::Result;
use crate::keys::{EntityKey, RecordKind, read_id, read_u64};

/// Records handled between two progress reports of a read-only walk.
const PROGRESS_EVERY: u64 = 1024;

/// What one key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    Event(EntityKey, u64),
    Snapshot(EntityKey, u64),
    DeletionMark(EntityKey),
    LogBlock {
        collection: String,
        first: u64,
    },
    TableRow {
        table: String,
        row: String,
    },
    Probe(EntityKey),
    /// A key of a known kind whose layout is wrong, or of no known kind.
    Foreign,
}

/// Parses `key` by its kind byte; anything that is not exactly a key Rush writes is
/// [`Parsed::Foreign`].
pub(crate) fn parse(key: &[u8]) -> Parsed {
    parse_known(key).unwrap_or(Parsed::Foreign)
}

fn parse_known(key: &[u8]) -> Option<Parsed> {
    let (&kind, _) = key.split_first()?;
    let (first_id, after_first) = read_id(key, 1)?;
    if kind == RecordKind::Offset as u8 {
        let first = read_u64(key, after_first)?;
        return (key.len() == after_first + 8).then(|| Parsed::LogBlock {
            collection: first_id.to_owned(),
            first,
        });
    }
    if kind == RecordKind::TableRow as u8 {
        let row = std::str::from_utf8(key.get(after_first..)?).ok()?;
        return Some(Parsed::TableRow {
            table: first_id.to_owned(),
            row: row.to_owned(),
        });
    }
    let (entity_id, end) = read_id(key, after_first)?;
    let entity = EntityKey::new(first_id, entity_id).ok()?;
    let seq = || read_u64(key, end).filter(|_| key.len() == end + 8);
    let exact = key.len() == end;
    match kind {
        k if k == RecordKind::Event as u8 => Some(Parsed::Event(entity, seq()?)),
        k if k == RecordKind::Snapshot as u8 => Some(Parsed::Snapshot(entity, seq()?)),
        k if k == RecordKind::DeletedTo as u8 && exact => Some(Parsed::DeletionMark(entity)),
        k if k == RecordKind::Probe as u8 && exact => Some(Parsed::Probe(entity)),
        _ => None,
    }
}

/// A readable name of the record at `key`, for reports and errors.
pub(crate) fn describe(key: &[u8], parsed: &Parsed) -> String {
    match parsed {
        Parsed::Event(entity, seq) => entity.describe(RecordKind::Event, *seq),
        Parsed::Snapshot(entity, seq) => entity.describe(RecordKind::Snapshot, *seq),
        Parsed::DeletionMark(entity) => format!(
            "deletion mark of {:?}/{:?}",
            entity.collection(),
            entity.entity_id()
        ),
        Parsed::LogBlock { collection, first } => {
            format!("log block at offset {first} of collection {collection:?}")
        }
        Parsed::TableRow { table, row } => format!("row {row:?} of table {table:?}"),
        Parsed::Probe(entity) => format!(
            "health probe of {:?}/{:?}",
            entity.collection(),
            entity.entity_id()
        ),
        Parsed::Foreign => format!("key {}", hex_prefix(key)),
    }
}

/// The first bytes of `key` in hex, enough to find it.
pub(crate) fn hex_prefix(key: &[u8]) -> String {
    let mut out: String = key.iter().take(24).map(|b| format!("{b:02x}")).collect();
    if key.len() > 24 {
        out.push_str("...");
    }
    out
}

/// What [`walk`] calls with each key, value and parsed key: `Ok(true)` to go on.
pub(crate) type KeyVisitor<'a> = dyn FnMut(&[u8], &[u8], Parsed) -> Result<bool> + 'a;

/// Calls `visit` with every entry of each `[start, end)` range in turn, parsed, until it
/// returns `Ok(false)` or `progress` does (every [`PROGRESS_EVERY`] records and at the
/// end). Returns whether the walk went through to the end.
pub(crate) fn walk(
    backend: &dyn Backend,
    ranges: &[(Vec<u8>, Vec<u8>)],
    progress: &mut super::Progress<'_>,
    visit: &mut KeyVisitor<'_>,
) -> Result<bool> {
    let mut pending = 0u64;
    let mut completed = true;
    for (start, end) in ranges {
        backend.visit_range(start, end, &mut |key, value| {
            if !visit(key, value, parse(key))? {
                completed = false;
                return Ok(false);
            }
            pending += 1;
            if pending == PROGRESS_EVERY {
                pending = 0;
                if !progress(PROGRESS_EVERY) {
                    completed = false;
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        if !completed {
            return Ok(false);
        }
    }
    Ok(progress(pending))
}

/// The whole key space (as far as any key that is not 64 bytes of 0xff goes).
pub(crate) fn everything() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![(Vec::new(), vec![u8::MAX; 64])]
}
