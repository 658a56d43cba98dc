//! One core per engine in a process: every database, store, table or query opened on the
//! same engine (clones of one `SledManager` or `MemoryManager` share one) shares one
//! writer, so there is one write path and one durability discipline per database.

use super::DatabaseConfig;
use super::core::Core;
use crate::backend::Backend;
use crate::error::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

fn open_cores() -> &'static Mutex<HashMap<usize, Weak<Core>>> {
    static OPEN: OnceLock<Mutex<HashMap<usize, Weak<Core>>>> = OnceLock::new();
    OPEN.get_or_init(Mutex::default)
}

/// The core open on `engine`, or a new one started with `config`.
pub(super) fn core_for(engine: Arc<dyn Backend>, config: &DatabaseConfig) -> Result<Arc<Core>> {
    let identity = engine.identity();
    // Declared before the lock so that it is dropped after it: dropping the last handle
    // of a core takes the lock again.
    let stale: Option<Arc<Core>>;
    let mut open = open_cores().lock().unwrap_or_else(PoisonError::into_inner);
    match open.get(&identity).and_then(Weak::upgrade) {
        Some(core) if !core.is_shut_down() => return Ok(core),
        other => stale = other,
    }
    let core = Arc::new(Core::start(engine, config)?);
    open.insert(identity, Arc::downgrade(&core));
    // Entries of cores that ended are dropped as they are found.
    open.retain(|_, core| core.strong_count() > 0);
    drop(open);
    drop(stale);
    Ok(core)
}

/// Removes `core`'s entry (after its shutdown, or when it is dropped), not a newer one.
pub(super) fn forget(core: *const Core, identity: usize) {
    let mut open = open_cores().lock().unwrap_or_else(PoisonError::into_inner);
    if open
        .get(&identity)
        .is_some_and(|entry| std::ptr::eq(entry.as_ptr(), core))
    {
        open.remove(&identity);
    }
}
