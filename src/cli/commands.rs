//! The read-only commands: list, events, verify, stats.

use super::findings;
use super::format::{Table, bytes, key_id, time};
use super::names;
use super::progress::{Bar, Interrupt};
use super::{Decoder, EXIT_INTERRUPTED, EXIT_PROBLEMS};
use rush_store::inspect::{Inspector, KindStats, RawEvent, Scope};
use rush_store::{EntityKey, Error};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write;

/// Why a command stopped early.
pub(crate) enum Failure {
    /// The store refused or failed.
    Store(Error),
    /// Anything else, as one line.
    Other(String),
    /// stdout was closed (`rush ... | head`): not an error.
    ClosedOutput,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Store(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::ClosedOutput
        } else {
            Failure::Other(format!("cannot write the output: {error}"))
        }
    }
}

/// The exit code, or why there is none.
pub(crate) type Outcome = Result<u8, Failure>;

/// What every command works with.
pub(crate) struct Context<'a> {
    pub(crate) inspector: Inspector,
    pub(crate) interrupt: Interrupt,
    pub(crate) decoders: &'a BTreeMap<String, Decoder>,
    pub(crate) out: &'a mut dyn Write,
}

/// Says the run was interrupted and how to finish it.
pub(crate) fn interrupted(what: &str) -> u8 {
    eprintln!("rush: interrupted: {what}");
    EXIT_INTERRUPTED
}

impl Context<'_> {
    pub(crate) fn bar(&self, what: &str) -> Bar {
        Bar::new(what, &self.interrupt)
    }

    pub(crate) fn list(&mut self) -> Outcome {
        let bar = self.bar("reading");
        let entities = self
            .inspector
            .entities(&Scope::All, &mut |n| bar.advance(n))?;
        bar.finish();
        if self.interrupt.is_set() {
            return Ok(interrupted("the listing was not printed"));
        }
        let out = &mut *self.out;
        let mut table = Table::new(&[
            "COLLECTION",
            "ENTITY",
            "EVENTS",
            "STORED",
            "HIGHEST",
            "SNAPSHOTS",
            "DELETED TO",
        ]);
        let mut collections: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for entity in &entities {
            let stored = match entity.events {
                0 => "-".to_owned(),
                _ => format!("{}..={}", entity.first_event, entity.last_event),
            };
            let snapshots = match entity.snapshots.last() {
                None => "-".to_owned(),
                Some(newest) => format!("{} (newest at {newest})", entity.snapshots.len()),
            };
            table.row(vec![
                names::escaped(&entity.collection),
                names::escaped(&entity.entity_id),
                entity.events.to_string(),
                stored,
                entity.highest_sequence_number().to_string(),
                snapshots,
                dash(entity.deleted_to),
            ]);
            let totals = collections.entry(&entity.collection).or_default();
            totals.0 += 1;
            totals.1 += entity.events;
        }
        table.print(out)?;
        writeln!(out)?;
        for (collection, (count, events)) in &collections {
            let log_end = self.inspector.collection_log_end(collection)?;
            writeln!(
                out,
                "collection {collection:?}: {count} entities, {events} events stored, log offset {log_end}"
            )?;
        }
        writeln!(
            out,
            "{} collections, {} entities",
            collections.len(),
            entities.len()
        )?;
        Ok(0)
    }

    pub(crate) fn events(&mut self, collection: &str, entity: &str, from: u64) -> Outcome {
        let key = EntityKey::new(collection, entity)?;
        let decoder = self.decoders.get(collection);
        let out = &mut *self.out;
        let mut problems = 0u64;
        let mut printed = 0u64;
        let mut write_error = None;
        self.inspector.events(&key, from, &mut |event| {
            problems += u64::from(event.problem.is_some());
            printed += 1;
            let line = event_json(&event, decoder);
            if let Err(e) = writeln!(out, "{line}") {
                write_error = Some(e);
                return Ok(false);
            }
            Ok(!self.interrupt.is_set())
        })?;
        if let Some(error) = write_error {
            return Err(error.into());
        }
        if self.interrupt.is_set() {
            return Ok(interrupted("not every event was printed"));
        }
        if printed == 0 {
            // A typo must not look like an entity without events.
            let scope = Scope::Entity(key);
            if self.inspector.entities(&scope, &mut |_| true)?.is_empty() {
                return Err(unknown(collection, Some(entity)));
            }
        }
        if problems > 0 {
            eprintln!(
                "rush: {problems} damaged records (see their \"error\"; `verify` reports more)"
            );
            return Ok(EXIT_PROBLEMS);
        }
        Ok(0)
    }

    pub(crate) fn verify(&mut self, collection: Option<&str>, entity: Option<&str>) -> Outcome {
        let scope = match (collection, entity) {
            (None, _) => Scope::All,
            (Some(collection), None) => Scope::Collection(collection.to_owned()),
            (Some(collection), Some(entity)) => Scope::Entity(EntityKey::new(collection, entity)?),
        };
        let bar = self.bar("verifying");
        let report = self.inspector.verify(&scope, &mut |n| bar.advance(n))?;
        bar.finish();
        let found =
            report.events_checked + report.snapshots_checked + report.deletion_marks_checked;
        if let (Some(collection), 0) = (collection, found) {
            return Err(unknown(collection, entity));
        }
        let out = &mut *self.out;
        let records = report.events_checked + report.snapshots_checked + report.table_rows_checked;
        let noted = findings::print(out, "error", &report.errors, records)?;
        findings::print(out, "warning", &report.warnings, records)?;
        if !noted.foreign_keys.is_empty() {
            writeln!(out, "hint: {}", mid_rotation(&noted.foreign_keys))?;
        }
        let sealed = match report.sealed_unchecked {
            0 => String::new(),
            n => format!(
                " ({n} encrypted records checked for length only: give the key to check their tags)"
            ),
        };
        writeln!(
            out,
            "checked {} events, {} snapshots, {} deletion marks, {} log entries, {} table rows{sealed}: {} errors, {} warnings",
            report.events_checked,
            report.snapshots_checked,
            report.deletion_marks_checked,
            report.log_entries_checked,
            report.table_rows_checked,
            report.errors.len(),
            report.warnings.len(),
        )?;
        if report.interrupted {
            return Ok(interrupted(
                "the report covers only what was read before Ctrl-C",
            ));
        }
        Ok(if report.is_ok() { 0 } else { EXIT_PROBLEMS })
    }

    pub(crate) fn stats(&mut self) -> Outcome {
        let bar = self.bar("counting");
        let stats = self.inspector.stats(&mut |n| bar.advance(n))?;
        bar.finish();
        let out = &mut *self.out;
        writeln!(out, "size on disk: {}", bytes(stats.size_on_disk))?;
        let has_key = self.inspector.key_id().is_some();
        for (name, kind) in [
            ("events", &stats.events),
            ("snapshots", &stats.snapshots),
            ("table rows", &stats.table_rows),
        ] {
            writeln!(out, "{name}: {}", kind_line(kind, has_key))?;
        }
        writeln!(
            out,
            "log blocks: {} records, {} ({} entries)",
            stats.log_blocks.records,
            bytes(stats.log_blocks.key_bytes + stats.log_blocks.value_bytes),
            stats.log_entries
        )?;
        writeln!(out, "deletion marks: {}", stats.deletion_marks)?;
        writeln!(out, "other keys: {}", stats.other_keys)?;
        writeln!(
            out,
            "entities: {} in {} collections; {} with a snapshot",
            stats.entities, stats.collections, stats.entities_with_snapshot
        )?;
        writeln!(
            out,
            "snapshot coverage: {} events after the newest snapshots; {} events of entities without a snapshot",
            stats.events_since_snapshot, stats.events_without_snapshot
        )?;
        if stats.interrupted {
            return Ok(interrupted("the counts are partial"));
        }
        Ok(0)
    }
}

/// What to do when records are sealed with keys that none of the given keys is: the
/// usual cause is a rotation that stopped, with only its new key given.
fn mid_rotation(foreign_keys: &[(String, u64)]) -> String {
    let sealed: Vec<String> = foreign_keys
        .iter()
        .map(|(id, n)| {
            format!(
                "{} with key id {id}",
                findings::count(*n, "record is sealed", "records are sealed")
            )
        })
        .collect();
    format!(
        "{}, which no given key opens, while the given key opens the database's first \
         encrypted records: the database looks mid-rotation (a `rotate-key` that did not \
         finish). Give the old key too, with --old-key-file PATH (repeatable) or \
         RUSH_OLD_KEY; `rotate-key --key-file OLD --new-key-file NEW` then finishes the rotation",
        sealed.join(" and ")
    )
}

fn dash(n: u64) -> String {
    if n == 0 {
        "-".to_owned()
    } else {
        n.to_string()
    }
}

/// Records, bytes, flags and compression of one kind.
fn kind_line(kind: &KindStats, has_key: bool) -> String {
    let mut line = format!(
        "{} records, {} (keys {}, values {}), {} compressed, {} encrypted",
        kind.records,
        bytes(kind.key_bytes + kind.value_bytes),
        bytes(kind.key_bytes),
        bytes(kind.value_bytes),
        kind.compressed,
        kind.encrypted
    );
    if let Some(ratio) = kind.compression_ratio() {
        line.push_str(&format!(
            "; {} compressed records inflate from {} to {} ({ratio:.2}x)",
            kind.inflated_records,
            bytes(kind.gzip_bytes),
            bytes(kind.inflated_bytes)
        ));
    }
    let unmeasured = kind.compressed - kind.inflated_records;
    if unmeasured > 0 && !has_key {
        line.push_str(&format!(
            "; {unmeasured} compressed records not measured (encrypted: give the key)"
        ));
    }
    line
}

/// One JSON line of `events`.
fn event_json(event: &RawEvent, decoder: Option<&Decoder>) -> Value {
    let mut line = Map::new();
    line.insert("seq".into(), json!(event.sequence_number));
    if let Some(envelope) = &event.envelope {
        line.insert("time".into(), json!(time(envelope.timestamp())));
    }
    line.insert("stored_size".into(), json!(event.stored_len));
    if let Some(envelope) = &event.envelope {
        line.insert("format_version".into(), json!(envelope.format_version));
        line.insert("compressed".into(), json!(envelope.compressed));
        line.insert("encrypted".into(), json!(envelope.encrypted));
        line.insert("key_id".into(), json!(envelope.key_id.map(key_id)));
    }
    if let Some(meta) = &event.meta {
        line.insert("event_type".into(), json!(meta.event_type));
        line.insert("schema_version".into(), json!(meta.schema_version));
        line.insert("tags".into(), json!(meta.tags));
        line.insert(
            "metadata".into(),
            serde_json::to_value(&meta.metadata).unwrap_or(Value::Null),
        );
    }
    if let Some(len) = event.payload_len {
        line.insert("payload_len".into(), json!(len));
    }
    if let Some(problem) = &event.problem {
        line.insert("error".into(), json!(problem));
    } else if let (Some(decode), true) = (decoder, event.is_opened()) {
        match decode(event) {
            Ok(value) => line.insert("event".into(), value),
            Err(why) => line.insert("decode_error".into(), json!(why)),
        };
    }
    Value::Object(line)
}

/// A collection or entity that holds nothing: an error (exit 2), so that a typo does not
/// read as a clean, empty result.
fn unknown(collection: &str, entity: Option<&str>) -> Failure {
    Failure::Other(match entity {
        Some(entity) => format!(
            "no entity {entity:?} in collection {collection:?} (no events, snapshots or deletion mark): `list` shows what there is"
        ),
        None => format!(
            "no collection {collection:?} (no entity has events, snapshots or a deletion mark in it): `list` shows what there is"
        ),
    })
}
