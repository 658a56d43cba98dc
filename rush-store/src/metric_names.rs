//! The metrics Rush records through the [`metrics`](https://docs.rs/metrics) facade. Rush
//! only records; the application installs the recorder it exports with (Prometheus,
//! StatsD, OpenTelemetry...). Without a recorder, recording costs an atomic load.
//!
//! | Name | Kind | Labels | What |
//! |---|---|---|---|
//! | `rush_group_commit_size` | histogram | | writes (events, snapshots, rows) per group commit |
//! | `rush_group_commit_seconds` | histogram | | one group: engine commit and flush |
//! | `rush_subscription_lag_offsets` | gauge | `collection` | log entries after the page a subscription last read |
//! | `rush_persist_seconds` | histogram | `collection` | an actor's persist, from handing the events to the writer to durable |
//! | `rush_events_persisted_total` | counter | `collection` | events persisted by actors |
//! | `rush_commands_rejected_total` | counter | `collection` | commands their behaviour rejected |
//! | `rush_recovery_seconds` | histogram | `collection` | an actor's recovery: snapshot and later events |
//! | `rush_snapshots_total` | counter | `collection` | snapshots actors took |
//! | `rush_actor_restarts_total` | counter | `collection` | actor failures that led to a restart |
//! | `rush_projection_lag_offsets` | gauge | `projection` | log entries after the page a projection last handled |
//!
//! Labels name collections and projections, never entities, so the number of series
//! stays bounded whatever the number of entities.

/// Histogram: writes per group commit.
pub const GROUP_COMMIT_SIZE: &str = "rush_group_commit_size";
/// Histogram: seconds one group commit took in the engine (commit and flush).
pub const GROUP_COMMIT_SECONDS: &str = "rush_group_commit_seconds";
/// Gauge, label `collection`: log entries after a subscription's last page.
pub const SUBSCRIPTION_LAG_OFFSETS: &str = "rush_subscription_lag_offsets";
/// Histogram, label `collection`: seconds from handing an actor's events to the writer to
/// their being durable.
pub const PERSIST_SECONDS: &str = "rush_persist_seconds";
/// Counter, label `collection`: events persisted by actors.
pub const EVENTS_PERSISTED_TOTAL: &str = "rush_events_persisted_total";
/// Counter, label `collection`: commands rejected by their behaviour.
pub const COMMANDS_REJECTED_TOTAL: &str = "rush_commands_rejected_total";
/// Histogram, label `collection`: seconds an actor's recovery took.
pub const RECOVERY_SECONDS: &str = "rush_recovery_seconds";
/// Counter, label `collection`: snapshots taken by actors.
pub const SNAPSHOTS_TOTAL: &str = "rush_snapshots_total";
/// Counter, label `collection`: actor failures that led to a restart.
pub const ACTOR_RESTARTS_TOTAL: &str = "rush_actor_restarts_total";
/// Gauge, label `projection`: log entries after a projection's last handled page.
pub const PROJECTION_LAG_OFFSETS: &str = "rush_projection_lag_offsets";

/// Every name above, for exporters that describe them up front and for tests.
pub const ALL: [&str; 10] = [
    GROUP_COMMIT_SIZE,
    GROUP_COMMIT_SECONDS,
    SUBSCRIPTION_LAG_OFFSETS,
    PERSIST_SECONDS,
    EVENTS_PERSISTED_TOTAL,
    COMMANDS_REJECTED_TOTAL,
    RECOVERY_SECONDS,
    SNAPSHOTS_TOTAL,
    ACTOR_RESTARTS_TOTAL,
    PROJECTION_LAG_OFFSETS,
];

/// Registers a description and unit of every metric with the installed recorder (call
/// it once after installing one; recording works without it).
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(GROUP_COMMIT_SIZE, Unit::Count, "writes per group commit");
    describe_histogram!(
        GROUP_COMMIT_SECONDS,
        Unit::Seconds,
        "one group commit in the engine: commit and flush"
    );
    describe_gauge!(
        SUBSCRIPTION_LAG_OFFSETS,
        Unit::Count,
        "log entries after a subscription's last page"
    );
    describe_histogram!(
        PERSIST_SECONDS,
        Unit::Seconds,
        "an actor's persist, until its events are durable"
    );
    describe_counter!(
        EVENTS_PERSISTED_TOTAL,
        Unit::Count,
        "events persisted by actors"
    );
    describe_counter!(
        COMMANDS_REJECTED_TOTAL,
        Unit::Count,
        "commands rejected by their behaviour"
    );
    describe_histogram!(RECOVERY_SECONDS, Unit::Seconds, "an actor's recovery");
    describe_counter!(SNAPSHOTS_TOTAL, Unit::Count, "snapshots taken by actors");
    describe_counter!(
        ACTOR_RESTARTS_TOTAL,
        Unit::Count,
        "actor failures that led to a restart"
    );
    describe_gauge!(
        PROJECTION_LAG_OFFSETS,
        Unit::Count,
        "log entries after a projection's last handled page"
    );
}
