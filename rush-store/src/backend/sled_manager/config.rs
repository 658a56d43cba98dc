//! How a sled database is opened: [`SledConfig`] and its defaults.

/// How a sled database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SledConfig {
    /// sled's page cache, in bytes (default 256 MiB). Resident memory grows past it.
    /// Encrypted records carry 40 bytes of nonce and tag, so the same number of recent
    /// events needs about 1.6x the cache that plain records would.
    pub cache_capacity: u64,
    /// sled's background flush period in milliseconds (default 500). Without the
    /// write-ahead log, the loss window of
    /// [`Durability::Periodic`](crate::Durability::Periodic) writes on a process crash;
    /// with it, those writes are in the log from the start, and the flusher only writes
    /// sled's buffers out sooner than a checkpoint would.
    pub flush_every_ms: u64,
    /// After each flush, also fsync sled's files (default `true`). Without it, a flushed
    /// write survives a process crash but not a power loss. Off needs
    /// [`SledConfig::write_ahead_log`] off too: the log's whole point is its sync.
    pub sync_to_disk: bool,
    /// Keep the commit mark (default `true`): every flush also records, in `rush-mark`,
    /// how many commits sled holds durably, and an open that finds fewer (sled recovered
    /// to an older state after damage to its files) is [`Error::Corrupted`](crate::Error::Corrupted) instead of a
    /// silent loss of acknowledged events. It costs one 24-byte write and data sync per
    /// flush (engine_bench). Off, that rollback goes unnoticed.
    pub commit_mark: bool,
    /// Put a write-ahead log in front of sled (default `true` since 2026-12-05, `false`
    /// before; FORMAT.md, "The write-ahead log"): each durable commit is appended to
    /// `rush-wal` and made durable with one
    /// data sync, then applied to sled without sled's batch (which writes sled's log twice
    /// per commit) and without sled's flush. sled flushes only at a checkpoint, when the
    /// log holds more than [`SledConfig::checkpoint_bytes`]; an open replays the log. A
    /// lone client's durable commit takes less than half as long, and each command less
    /// CPU (README, "Performance"); sled's files take about 20% more bytes per event
    /// written that way. A [`Durability::Periodic`](crate::Durability::Periodic) commit
    /// is appended to the log without a sync and applied as one sled batch; the next
    /// flush syncs the log, so a crash of the process loses none of them. Opening the folder
    /// without the option replays and checkpoints the log, then removes it; until then,
    /// builds that do not know the log (before 2026-12-05) refuse the folder, so opening
    /// a folder once with the log is a step an older build cannot undo by itself. Needs
    /// [`SledConfig::sync_to_disk`].
    pub write_ahead_log: bool,
    /// With [`SledConfig::write_ahead_log`]: the log's size that starts a checkpoint
    /// (default 64 MiB). The commit that crosses it waits for sled's flush and fsync, so
    /// smaller means shorter replays after a crash and more frequent pauses.
    pub checkpoint_bytes: u64,
}

impl Default for SledConfig {
    fn default() -> Self {
        Self {
            cache_capacity: 256 * 1024 * 1024,
            flush_every_ms: 500,
            sync_to_disk: true,
            commit_mark: true,
            write_ahead_log: true,
            checkpoint_bytes: 64 * 1024 * 1024,
        }
    }
}
