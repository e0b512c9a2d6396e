//! The one shared snapshot: a cloneable reader for the request path and a single,
//! non-`Clone` publisher for the control task.

use crate::table::RoutingTable;
use crate::warm::{self, Runtimes, Serving, Warming};
use arc_swap::{ArcSwap, Guard};
use std::sync::Arc;

/// Read side: one `load()` per request, never blocks, never allocates.
#[derive(Clone)]
pub struct Router {
    table: Arc<ArcSwap<RoutingTable>>,
    runtimes: Arc<Runtimes>,
}

/// Write side: whoever holds it decides what traffic does. Not `Clone` on purpose.
pub struct RoutesPublisher {
    table: Arc<ArcSwap<RoutingTable>>,
    /// The runtimes serving from this snapshot, where warming opens connections.
    runtimes: Arc<Runtimes>,
}

/// Creates the snapshot holding `initial`, with its two ends.
pub fn channel(mut initial: RoutingTable) -> (RoutesPublisher, Router) {
    let fresh = initial.take_fresh();
    let table = Arc::new(ArcSwap::from_pointee(initial));
    let runtimes = Arc::<Runtimes>::default();
    fresh.iter().for_each(|r| r.activate());
    (RoutesPublisher { table: table.clone(), runtimes: runtimes.clone() }, Router { table, runtimes })
}

impl Router {
    /// The current table. Drop the guard before any `.await`.
    pub fn load(&self) -> Guard<Arc<RoutingTable>> {
        self.table.load()
    }

    /// Lists the current runtime as one that serves requests, while the guard lives.
    pub(crate) fn serving(&self) -> Serving {
        self.runtimes.enter()
    }
}

impl RoutesPublisher {
    /// Makes `table` the one every following request sees.
    pub fn publish(&self, mut table: RoutingTable) {
        let fresh = table.take_fresh();
        self.table.store(Arc::new(table));
        // Only now does a pool that lost its traffic start its grace (and one that
        // regained it keep its connections): a change that fails before it is
        // published leaves the live pools as they were.
        fresh.iter().for_each(|r| r.activate());
    }

    /// The current table (to build the next one from).
    pub fn current(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// A reader of the same snapshot.
    pub fn router(&self) -> Router {
        Router { table: self.table.clone(), runtimes: self.runtimes.clone() }
    }

    /// Starts opening connections to the pools of `service` that `next` gives more
    /// weight than the current table does, on every runtime serving requests;
    /// `wait` on it, then `publish(next)`.
    pub fn warm(&self, next: &RoutingTable, service: &str) -> Warming {
        let now = self.current();
        match (now.service(service), next.service(service)) {
            (Some(a), Some(b)) if !Arc::ptr_eq(a, b) => warm::start(&self.runtimes, a, b),
            _ => Warming::none(),
        }
    }
}
