//! The one shared snapshot: a cloneable reader for the request path and a single,
//! non-`Clone` publisher for the control task.

use crate::table::RoutingTable;
use arc_swap::{ArcSwap, Guard};
use std::sync::Arc;

/// Read side: one `load()` per request, never blocks, never allocates.
#[derive(Clone)]
pub struct Router {
    table: Arc<ArcSwap<RoutingTable>>,
}

/// Write side: whoever holds it decides what traffic does. Not `Clone` on purpose.
pub struct RoutesPublisher {
    table: Arc<ArcSwap<RoutingTable>>,
}

/// Creates the snapshot holding `initial`, with its two ends.
pub fn channel(initial: RoutingTable) -> (RoutesPublisher, Router) {
    let table = Arc::new(ArcSwap::from_pointee(initial));
    (RoutesPublisher { table: table.clone() }, Router { table })
}

impl Router {
    /// The current table. Drop the guard before any `.await`.
    pub fn load(&self) -> Guard<Arc<RoutingTable>> {
        self.table.load()
    }
}

impl RoutesPublisher {
    /// Makes `table` the one every following request sees.
    pub fn publish(&self, table: RoutingTable) {
        self.table.store(Arc::new(table));
    }

    /// The current table (to build the next one from).
    pub fn current(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// A reader of the same snapshot.
    pub fn router(&self) -> Router {
        Router { table: self.table.clone() }
    }
}
