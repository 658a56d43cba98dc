//! Recovery of one incarnation, in `pre_start`: wait for a recovery permit (so a restart
//! of thousands of actors does not stall the system), load the newest snapshot and replay
//! the later events on a blocking thread, then run the completion hook. Commands sent
//! meanwhile wait in the mailbox and are handled afterwards, in order.

use super::{HostArgs, HostMsg, HostState};
use crate::behavior::{EventSourced, RecoveryInfo};
use crate::metrics::Instruments;
use ractor::{ActorProcessingErr, ActorRef};
use rush_store::metric_names;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::{Instrument, info, info_span};

pub(super) async fn recover<S: EventSourced>(
    myself: ActorRef<HostMsg<S>>,
    args: HostArgs,
) -> Result<HostState<S>, ActorProcessingErr> {
    let span = info_span!("recovery", entity = %args.name, incarnation = args.incarnation);
    async move {
        let shared = Arc::clone(&args.shared);
        let _permit = shared.recovery_permits.acquire().await?;
        let started = Instant::now();
        let policy = S::snapshot_policy().unwrap_or(shared.config.snapshots);
        // Opening the store, loading the snapshot, replaying and listing the snapshots run
        // as one job on the database's reader threads, off the async workers.
        let (db, id, keep) = (
            shared.db.clone(),
            args.entity_id.clone(),
            policy.keep.max(1),
        );
        let (store, recovered, last_snapshot) = shared
            .db
            .run_blocking("recover", move || {
                let (mut store, recovered) = db.recover_store::<S>(S::COLLECTION, &id)?;
                store.set_snapshots_to_keep(keep)?;
                Ok((store, recovered.state, recovered.snapshot_sequence_number))
            })
            .await?;
        let state = recovered.unwrap_or_default();
        let took = started.elapsed();
        ::metrics::histogram!(metric_names::RECOVERY_SECONDS, "collection" => S::COLLECTION)
            .record(took.as_secs_f64());
        args.metrics.last_recovery_micros.store(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let info = RecoveryInfo {
            entity_id: args.entity_id.clone(),
            sequence_number: store.highest_sequence_number(),
            took,
            incarnation: args.incarnation,
        };
        info!(seq = info.sequence_number, ?took, "recovered");
        state.on_recovery_completed(&info);
        let idle_timer = shared.config.passivate_after.map(|idle| {
            let period = (idle / 2).max(std::time::Duration::from_millis(5));
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(period);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    if myself.send_message(HostMsg::IdleCheck).is_err() {
                        break;
                    }
                }
            })
        });
        Ok(HostState {
            state,
            store,
            policy,
            last_snapshot,
            last_activity: Instant::now(),
            idle_timer,
            instruments: Instruments::register(S::COLLECTION),
            args,
        })
    }
    .instrument(span)
    .await
}
