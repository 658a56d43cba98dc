//! Restart policy: how often a failed actor (an entity's incarnation, a projection runner)
//! is restarted, after which backoff, and when its supervisor gives up. The entity
//! supervisor itself lives with the entity lifecycle (`entities`); the projection
//! supervisor in `projection`.

pub(crate) mod backoff;
mod restart_policy;

pub(crate) use restart_policy::RestartHistory;
pub use restart_policy::RestartPolicy;

use ractor::ActorRef;
use std::time::Duration;

/// Sends `message` to `actor` after `delay` (a restart after its backoff). If the actor
/// is gone by then, the message is dropped: there is nothing left to restart.
pub(crate) fn send_after<M: ractor::Message>(actor: &ActorRef<M>, delay: Duration, message: M) {
    let actor = actor.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = actor.send_message(message);
    });
}
