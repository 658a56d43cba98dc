//! `verify`'s errors and warnings, bounded. One cause can touch every record (a rotation
//! that did not finish, a key given for a plain database): printed one line per record,
//! that is hundreds of thousands of lines that bury the cause. So the first few findings
//! are printed in full, the rest are counted by kind on one line, and a finding about the
//! whole run is said once.

use rush_store::IntegrityError;
use std::collections::HashMap;
use std::io::{self, Write};

/// Findings of one severity printed in full; the rest are counted.
const SHOWN: usize = 10;
/// Kinds named in the line that counts the findings not shown.
const KINDS_NAMED: usize = 5;

/// How the codec says that a record is sealed with a key the keyring does not hold
/// (`codec/envelope.rs`); the key id follows, then a comma.
const FOREIGN_KEY: &str = "record is sealed with key id ";
/// How `Inspector::verify` says that a record is plain although a key was given: true of
/// every record of a plain database, so it is said once for the run.
const PLAIN_BESIDE_KEY: &str = "not encrypted although a key was given";

/// What a finding is about, to count those not printed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    /// Sealed with this key id (in hex), which no given key has.
    ForeignKey(String),
    /// Plain although a key was given.
    PlainBesideKey,
    /// Anything else: the reason with its numbers masked, so that "events 3..=5 are
    /// absent" and "events 8..=9 are absent" are one kind.
    Other(String),
}

impl Kind {
    fn of(reason: &str) -> Self {
        if let Some((id, _)) = reason
            .strip_prefix(FOREIGN_KEY)
            .and_then(|rest| rest.split_once(','))
        {
            return Kind::ForeignKey(id.to_owned());
        }
        if reason.starts_with(PLAIN_BESIDE_KEY) {
            return Kind::PlainBesideKey;
        }
        let mut masked = String::with_capacity(reason.len());
        for c in reason.chars() {
            if !(c.is_ascii_digit() && masked.ends_with('#')) {
                masked.push(if c.is_ascii_digit() { '#' } else { c });
            }
        }
        Kind::Other(masked)
    }
}

/// One kind among the findings: how many, and the first one's reason.
struct Tally<'a> {
    kind: Kind,
    count: u64,
    example: &'a str,
}

/// Findings counted by kind, in the order their kinds were first met.
fn tally<'a>(findings: &[&'a IntegrityError]) -> Vec<Tally<'a>> {
    let mut tallies: Vec<Tally<'a>> = Vec::new();
    let mut index: HashMap<Kind, usize> = HashMap::new();
    for finding in findings {
        let kind = Kind::of(&finding.reason);
        match index.get(&kind).and_then(|&i| tallies.get_mut(i)) {
            Some(tally) => tally.count += 1,
            None => {
                index.insert(kind.clone(), tallies.len());
                tallies.push(Tally {
                    kind,
                    count: 1,
                    example: &finding.reason,
                });
            }
        }
    }
    tallies
}

/// `1 record`, `2 records`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What [`print`] found that the caller may explain further.
#[derive(Debug, Default)]
pub(crate) struct Noted {
    /// Records sealed with a key id that no given key has, per key id (hex), in the
    /// order first met.
    pub(crate) foreign_keys: Vec<(String, u64)>,
}

/// Prints `findings` as `severity: ...` lines: records plain beside a key on one line for
/// the run, the first [`SHOWN`] others in full, then one line counting the rest by kind.
/// `records` is how many records with contents (events, snapshots, table rows) were
/// checked, to say when none of them is encrypted.
pub(crate) fn print(
    out: &mut dyn Write,
    severity: &str,
    findings: &[IntegrityError],
    records: u64,
) -> io::Result<Noted> {
    let (plain, others): (Vec<&IntegrityError>, Vec<&IntegrityError>) = findings
        .iter()
        .partition(|f| Kind::of(&f.reason) == Kind::PlainBesideKey);
    if let Some(first) = plain.first() {
        let n = plain.len() as u64;
        let line = if n == records {
            format!(
                "none of the {} encrypted although a key was given: reading this database \
                 needs no key, and a store opened with the key refuses its plain records \
                 (`rotate-key` encrypts them)",
                count(n, "record is", "records is")
            )
        } else {
            format!(
                "{n} of the {} not encrypted although a key was given (the first: {}): a \
                 store opened with the key refuses them (`rotate-key` encrypts them)",
                count(records, "record is", "records are"),
                first.record
            )
        };
        writeln!(out, "{severity}: {line}")?;
    }
    for finding in others.iter().take(SHOWN) {
        writeln!(out, "{severity}: {finding}")?;
    }
    let mut noted = Noted::default();
    for tally in tally(&others) {
        if let Kind::ForeignKey(id) = &tally.kind {
            noted.foreign_keys.push((id.clone(), tally.count));
        }
    }
    let rest = others.get(SHOWN..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(noted);
    }
    let mut tallies = tally(rest);
    // Largest first; the sort is stable, so equal counts keep the order they were met in.
    tallies.sort_by_key(|tally| std::cmp::Reverse(tally.count));
    let mut parts: Vec<String> = tallies
        .iter()
        .take(KINDS_NAMED)
        .map(|tally| match &tally.kind {
            Kind::ForeignKey(id) => format!(
                "{} with key id {id}, which no given key opens",
                count(tally.count, "record sealed", "records sealed")
            ),
            _ => format!("{} like \"{}\"", tally.count, tally.example),
        })
        .collect();
    let unnamed: u64 = tallies.iter().skip(KINDS_NAMED).map(|t| t.count).sum();
    if unnamed > 0 {
        parts.push(format!(
            "{unnamed} of {} other kinds",
            tallies.len().saturating_sub(KINDS_NAMED)
        ));
    }
    writeln!(
        out,
        "{severity}: {} more {severity}s not shown: {}",
        rest.len(),
        parts.join("; ")
    )?;
    Ok(noted)
}
