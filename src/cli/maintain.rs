//! The commands that write: rotate-key, delete-to, compact, reindex. Each page they write is one
//! atomic batch followed by a flush, so Ctrl-C (checked between pages) or a crash leaves
//! a consistent database, and running the command again finishes the work.

use super::EXIT_PROBLEMS;
use super::commands::{Context, Failure, Outcome, interrupted};
use super::format::key_id;
use rush_store::{EncryptionKey, EntityKey};

impl Context<'_> {
    pub(crate) fn rotate_key(&mut self, new_key: Option<&EncryptionKey>) -> Outcome {
        let new_key = new_key.ok_or_else(|| {
            Failure::Other(
                "rotate-key needs the new key: --new-key-file PATH or RUSH_NEW_KEY".into(),
            )
        })?;
        let bar = self.bar("re-encrypting");
        let report = self
            .inspector
            .rotate_key(new_key, &mut |n| bar.advance(n))?;
        bar.finish();
        let out = &mut *self.out;
        writeln!(
            out,
            "re-encrypted {} records with key id {} ({} were already sealed with it)",
            report.rewritten,
            key_id(report.new_key_id),
            report.already_done
        )?;
        if report.interrupted {
            return Ok(interrupted(
                "some records still have the old key; run rotate-key again with both keys (--key-file OLD --new-key-file NEW) to finish",
            ));
        }
        writeln!(out, "from now on open the database with the new key only")?;
        Ok(0)
    }

    pub(crate) fn delete_to(&mut self, collection: &str, entity: &str, seq: u64) -> Outcome {
        let key = EntityKey::new(collection, entity)?;
        let bar = self.bar("deleting");
        let (removed, finished) = self
            .inspector
            .delete_to(&key, seq, &mut |n| bar.advance(n))?;
        bar.finish();
        writeln!(
            self.out,
            "deleted {removed} events of {collection:?}/{entity:?}; events 1..={seq} are gone for readers"
        )?;
        if !finished {
            return Ok(interrupted(
                "the deletion mark is written, so readers see the deletion; run delete-to or compact again to remove the rest",
            ));
        }
        Ok(0)
    }

    pub(crate) fn compact(&mut self) -> Outcome {
        let bar = self.bar("compacting");
        let report = self.inspector.compact(&mut |n| bar.advance(n))?;
        bar.finish();
        writeln!(
            self.out,
            "removed {} events left below the deletion marks of {} entities (interrupted deletions) and {} leftover health probes",
            report.events_removed, report.entities_cleaned, report.probes_removed
        )?;
        if report.interrupted {
            return Ok(interrupted("run compact again to finish"));
        }
        Ok(0)
    }

    pub(crate) fn reindex(&mut self) -> Outcome {
        let bar = self.bar("reindexing");
        let report = self.inspector.reindex(&mut |n| bar.advance(n))?;
        bar.finish();
        let out = &mut *self.out;
        for collection in &report.collections {
            writeln!(
                out,
                "collection {:?}: {} events got offsets {}..={}",
                collection.collection,
                collection.indexed,
                collection.first_offset,
                collection.last_offset
            )?;
        }
        for unreadable in &report.unreadable {
            writeln!(out, "not indexed: {unreadable}")?;
        }
        writeln!(
            out,
            "indexed {} events in {} collections; {} already had offsets; {} could not be read",
            report.indexed(),
            report.collections.len(),
            report.already_indexed,
            report.unreadable.len()
        )?;
        if report.indexed() > 0 {
            writeln!(
                out,
                "note: these events got offsets after the events already in their collection's log; \
                 run reindex once after upgrading, before projections start, so that they do not \
                 meet old events after newer ones"
            )?;
        }
        if report.interrupted {
            return Ok(interrupted(
                "some events have no offset yet; run reindex again to finish",
            ));
        }
        if !report.unreadable.is_empty() {
            eprintln!(
                "rush: {} damaged events were not indexed (`verify` reports more)",
                report.unreadable.len()
            );
            return Ok(EXIT_PROBLEMS);
        }
        Ok(0)
    }
}
