//! What the actors, handles and supervisor of one extension share. It sits below
//! `persistence`, `entity_ref`, `host` and `projection`, so none of them imports another
//! in a cycle.

use crate::config::PersistenceConfig;
use crate::entities::EntityTable;
use ractor::ActorCell;
use rush_store::Database;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Something `Persistence::shutdown` stops before the actors (a projection).
pub(crate) trait Stoppable: Send + Sync {
    /// Stops it; an already stopped one answers at once.
    fn stop_boxed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Everything the actors of one extension share.
pub(crate) struct Shared {
    pub(crate) id: u64,
    /// The database every actor, projection and saga of the extension reads and writes
    /// through: its writer is the one write path.
    pub(crate) db: Database,
    pub(crate) config: PersistenceConfig,
    pub(crate) recovery_permits: Semaphore,
    pub(crate) table: Arc<EntityTable>,
    pub(crate) supervisor: ActorCell,
    /// Projections spawned on this extension, stopped by `shutdown`.
    pub(crate) projections: std::sync::Mutex<Vec<Box<dyn Stoppable>>>,
}
