//! Follows one forwarded request until its response body is done (or dropped):
//! in-flight counts, the request counter and duration histogram, and the access
//! log line — all recorded once, when it ends.

use crate::access_log::Pending;
use crate::backend::{Backend, PoolStats};
use std::sync::Arc;
use std::time::Instant;
use switchyard_metrics::PoolMetrics;

/// Travels inside the response body; its drop is the end of the request.
pub struct Tracker {
    backend: Arc<Backend>,
    stats: Arc<PoolStats>,
    metrics: Arc<PoolMetrics>,
    start: Instant,
    status: u16,
    bytes: u64,
    log: Option<Box<Pending>>,
}

impl Tracker {
    /// Counts the request in flight on `backend` and its pool from now on.
    pub(crate) fn begin(
        backend: Arc<Backend>,
        stats: Arc<PoolStats>,
        metrics: Arc<PoolMetrics>,
        start: Instant,
    ) -> Tracker {
        backend.start();
        stats.start();
        Tracker { backend, stats, metrics, start, status: 0, bytes: 0, log: None }
    }

    /// The response status, once the head has arrived.
    pub(crate) fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// The access log line to write when the request ends.
    pub(crate) fn set_log(&mut self, log: Option<Box<Pending>>) {
        self.log = log;
    }

    /// Counts body bytes sent to the client.
    pub(crate) fn add_bytes(&mut self, n: usize) {
        self.bytes += n as u64;
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.backend.finish();
        self.stats.finish();
        let elapsed = self.start.elapsed();
        // A tracker dropped before any response head (the request failed) is
        // recorded by the caller as the proxy's own answer instead.
        if self.status != 0 {
            self.metrics.record(self.status, elapsed);
            if let Some(log) = self.log.take() {
                log.finish(self.status, self.bytes, elapsed);
            }
        }
    }
}
