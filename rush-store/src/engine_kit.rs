//! Building blocks for a storage engine written outside this crate: what a [`Backend`]
//! needs besides a key-value store, so that every engine keeps the same contract.
//!
//! - Log offsets: a [`Sequencer`] numbers a batch's [`LogAppend`]s under the engine's
//!   commit lock and packs each log's appends into one block ([`Sequencer::assign`]); the
//!   engine writes [`Assigned::blocks`] with the batch, then calls
//!   [`Sequencer::committed`] (or [`Sequencer::clear`] when the outcome is unknown).
//!   [`block_end`] reads the last offset of a stored block; [`decode_block`] checks a
//!   stored block (structure, then its CRC over key and bytes) and returns its entries as
//!   [`BlockEntries`], a view that counts them and visits them in offset order without an
//!   allocation per entry. Blocks are written in version 2 (prefix-compressed entries) and
//!   read in version 1 or 2 (FORMAT.md, "Collection logs"); the entries are opaque bytes
//!   to the engine, as [`LogAppend::value`] gave them.
//! - Reserved keys: keys starting with [`RESERVED_PREFIX`] belong to the engine; scans
//!   stop before them ([`clamp_end`]) and batches that write them are refused
//!   ([`refuse_reserved`]).
//! - The commit mark ([`CommitMark`]): a count of durable commits kept beside a file
//!   engine's own files, so that an engine that recovers to an older state after damage
//!   is [`Error::Corrupted`](crate::Error::Corrupted), never a silent rollback.
//!
//! The `conformance` feature adds `rush_store::conformance`: the contract as
//! one call that any engine runs in its own tests.
//!
//! [`Backend`]: crate::Backend
//! [`LogAppend`]: crate::LogAppend
//! [`LogAppend::value`]: crate::LogAppend::value

pub use crate::backend::commit_mark::{
    COUNTER_KEY, CommitMark, MARK_FILE, RESERVED_PREFIX, check_before_open, clamp_end,
    decode_counter, is_reserved, refuse_reserved,
};
pub use crate::backend::{
    Assigned, BlockEntries, Sequencer, block_end, confirm_now, decode_block, offset_of,
};
