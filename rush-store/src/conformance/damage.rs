//! The damage matrix: every file of a database, damaged in many ways, after a clean and
//! after an unclean shutdown. The rule it checks, as the README states it:
//!
//! Damage to any file of the database (bytes flipped, the file cut short, deleted or
//! replaced by garbage, after a clean or an unclean shutdown) ends with every acknowledged
//! event intact or with `Error::Corrupted`: never a panic, never a silent rollback.
//!
//! (Another error than [`Error::Corrupted`] fails the case too.)

use super::crash::{key, write_one};
use super::{EngineUnderTest, Outcome, Report, Violation, engine, scratch};
use crate::backend::Backend;
use crate::error::{Error, Result};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

const CHECK: &str = "damage matrix";
/// Entries flushed (acknowledged) before the image is taken.
const ACKED: u64 = 300;
/// Entries written after the last flush in an unclean image.
const UNFLUSHED: u64 = 100;

/// How the database was left when its files were damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Flushed and closed.
    Clean,
    /// Files copied while open, with writes after the last flush (as a kill leaves them).
    Unclean,
}

/// One way to damage a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Four bytes inverted at this offset.
    Flip(u64),
    /// Cut to this length.
    Truncate(u64),
    /// Removed.
    Delete,
    /// Replaced by as many bytes of garbage.
    Garbage,
}

/// The damages applied to a file of `len` bytes: flips at the start, the end and nine
/// places between, truncations to nothing, half and all but one byte, deletion, garbage.
pub fn damages(len: u64) -> Vec<Damage> {
    let mut cases = Vec::new();
    if len >= 4 {
        let mut offsets: Vec<u64> = (0..=10).map(|k| (len - 4) * k / 10).collect();
        offsets.dedup();
        cases.extend(offsets.into_iter().map(Damage::Flip));
    }
    if len > 0 {
        let mut lengths = vec![0, len / 2, len - 1];
        lengths.dedup();
        cases.extend(lengths.into_iter().map(Damage::Truncate));
    }
    cases.push(Damage::Delete);
    cases.push(Damage::Garbage);
    cases
}

/// Applies `damage` to `file`.
///
/// # Errors
///
/// The [`std::io::Error`] of reading, writing or removing `file`.
pub fn apply(file: &Path, damage: &Damage) -> std::io::Result<()> {
    match damage {
        Damage::Flip(at) => {
            let mut bytes = std::fs::read(file)?;
            let at = usize::try_from(*at).unwrap_or(usize::MAX);
            for byte in bytes.iter_mut().skip(at).take(4) {
                *byte ^= 0xA5;
            }
            std::fs::write(file, bytes)
        }
        Damage::Truncate(len) => std::fs::OpenOptions::new()
            .write(true)
            .open(file)?
            .set_len(*len),
        Damage::Delete => std::fs::remove_file(file),
        Damage::Garbage => {
            let len = std::fs::metadata(file)?.len();
            let garbage: Vec<u8> = (0..len)
                .map(|i| (i.wrapping_mul(7919) % 251) as u8)
                .collect();
            std::fs::write(file, garbage)
        }
    }
}

/// The contents of every file under `folder`, to tell whether an open changed them.
fn contents(folder: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    files(folder)?
        .into_iter()
        .map(|file| Ok((folder.join(&file), std::fs::read(folder.join(&file))?)))
        .collect()
}

/// Every regular file under `folder`, relative to it.
fn files(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(folder.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Copies every file of `from` into `to`, keeping the tree.
///
/// # Errors
///
/// The [`std::io::Error`] of listing `from`, creating a folder or copying a file.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for file in files(from)? {
        if let Some(parent) = to.join(&file).parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from.join(&file), to.join(&file))?;
    }
    Ok(())
}

fn io(detail: &str, e: std::io::Error) -> Violation {
    Violation {
        check: CHECK,
        detail: format!("{detail}: {e}"),
    }
}

/// A database image: `ACKED` entries flushed, then left as `shutdown` says.
fn image(engine_: &EngineUnderTest, shutdown: Shutdown) -> Outcome<tempfile::TempDir> {
    let live = scratch(CHECK)?;
    let image = scratch(CHECK)?;
    let db = engine(CHECK, engine_.open.as_ref()(live.path()))?;
    for i in 0..ACKED {
        engine(CHECK, write_one(db.as_ref(), i))?;
        if i % 50 == 49 {
            engine(CHECK, db.flush())?;
        }
    }
    engine(CHECK, db.flush())?;
    match shutdown {
        Shutdown::Clean => {
            drop(db);
            copy_tree(live.path(), image.path()).map_err(|e| io("copy the image", e))?;
        }
        Shutdown::Unclean => {
            for i in ACKED..ACKED + UNFLUSHED {
                engine(CHECK, write_one(db.as_ref(), i))?;
            }
            copy_tree(live.path(), image.path()).map_err(|e| io("copy the image", e))?;
            drop(db);
        }
    }
    Ok(image)
}

/// What one damaged case came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Intact,
    Refused,
}

/// Opens the damaged folder and reads every acknowledged entry back.
fn open_and_read(
    engine_: &EngineUnderTest,
    folder: &Path,
) -> Result<std::result::Result<(), String>> {
    let db = engine_.open.as_ref()(folder)?;
    read_back(db.as_ref())
}

fn read_back(db: &dyn Backend) -> Result<std::result::Result<(), String>> {
    for i in 0..ACKED {
        let value = db.get(&key(i))?;
        if value.as_deref() != Some(&i.to_be_bytes()[..]) {
            return Ok(Err(format!(
                "acknowledged entry {i} reads back as {value:?}"
            )));
        }
    }
    let all = db.scan(b"", &[0xFF; 8], usize::MAX, false)?;
    if all.len() < usize::try_from(ACKED).unwrap_or(usize::MAX) {
        return Ok(Err(format!("a full scan returns {} entries", all.len())));
    }
    Ok(Ok(()))
}

fn run_case(engine_: &EngineUnderTest, folder: &Path, what: &str) -> Outcome<Verdict> {
    let outcome = catch_unwind(AssertUnwindSafe(|| open_and_read(engine_, folder)));
    let violation = |detail: String| Violation {
        check: CHECK,
        detail: format!("{what}: {detail}"),
    };
    match outcome {
        Err(_) => Err(violation("a panic reached the caller".into())),
        Ok(Ok(Ok(()))) => Ok(Verdict::Intact),
        Ok(Ok(Err(loss))) => Err(violation(format!("opened without an error, but {loss}"))),
        Ok(Err(Error::Corrupted { .. })) => Ok(Verdict::Refused),
        Ok(Err(other)) => Err(violation(format!(
            "an error that is not Corrupted: {other}"
        ))),
    }
}

/// Damages every file of an image of `engine`, after each kind of shutdown, in every way
/// [`damages`] lists, and checks each case; then checks that a fresh folder still opens.
///
/// # Errors
///
/// A [`Violation`] listing every case that ended in silent data loss, a panic, or an error
/// other than [`Error::Corrupted`]; one when an undamaged image is refused, a fresh folder
/// no longer opens, or the image's files cannot be copied or damaged.
pub fn check_matrix(engine_: &EngineUnderTest, report: &mut Report) -> Outcome {
    let mut violations = Vec::new();
    for shutdown in [Shutdown::Clean, Shutdown::Unclean] {
        let image = image(engine_, shutdown)?;
        // The undamaged image itself reads back.
        let whole = scratch(CHECK)?;
        copy_tree(image.path(), whole.path()).map_err(|e| io("copy the image", e))?;
        match run_case(
            engine_,
            whole.path(),
            &format!("{shutdown:?} image, undamaged"),
        )? {
            Verdict::Intact => {}
            Verdict::Refused => {
                return Err(Violation {
                    check: CHECK,
                    detail: format!("the undamaged {shutdown:?} image is refused as damaged"),
                });
            }
        }
        drop(whole);
        for file in files(image.path()).map_err(|e| io("list the image", e))? {
            let len = std::fs::metadata(image.path().join(&file))
                .map_err(|e| io("read the image", e))?
                .len();
            let (mut intact, mut refused, mut rewritten) = (0, 0, 0);
            for damage in damages(len) {
                let case = scratch(CHECK)?;
                copy_tree(image.path(), case.path()).map_err(|e| io("copy the image", e))?;
                apply(&case.path().join(&file), &damage).map_err(|e| io("damage a file", e))?;
                let what = format!("{shutdown:?} image, {} {damage:?}", file.display());
                let before = contents(case.path()).map_err(|e| io("read the case", e))?;
                match run_case(engine_, case.path(), &what) {
                    Ok(Verdict::Intact) => intact += 1,
                    Ok(Verdict::Refused) => {
                        refused += 1;
                        let after = contents(case.path()).map_err(|e| io("read the case", e))?;
                        if after != before {
                            rewritten += 1;
                        }
                    }
                    Err(violation) => violations.push(violation.detail),
                }
            }
            report.lines.push((
                CHECK,
                format!(
                    "{shutdown:?} {} ({len} bytes): {intact} intact, {refused} refused as Corrupted \
                     ({rewritten} of them with files changed by the open)",
                    file.display()
                ),
            ));
        }
    }
    if !violations.is_empty() {
        return Err(Violation {
            check: CHECK,
            detail: format!("{} cases:\n  {}", violations.len(), violations.join("\n  ")),
        });
    }
    let fresh = scratch(CHECK)?;
    let db = engine(CHECK, engine_.open.as_ref()(fresh.path()))?;
    engine(CHECK, write_one(db.as_ref(), 0))?;
    engine(CHECK, db.flush())?;
    Ok(())
}
