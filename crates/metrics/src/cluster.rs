//! Cluster mode's metrics (SPEC §6): whether the store answers, when this replica
//! last synced with it, and what went wrong with it.

use crate::names;

/// Whether the store answers.
pub fn cluster_connected(up: bool) {
    metrics::gauge!(names::CLUSTER_CONNECTED).set(if up { 1.0 } else { 0.0 });
}

/// This replica read the store or applied a change from it just now.
pub fn cluster_synced() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!(names::CLUSTER_LAST_SYNC).set(now);
}

/// Counts a store problem (`unreadable_value`, `watch`, `commit`, `connect`, `lease`).
pub fn cluster_error(kind: &'static str) {
    metrics::counter!(names::CLUSTER_ERRORS, "kind" => kind).increment(1);
}
