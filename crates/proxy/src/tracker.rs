//! Follows one forwarded request until its response body is done (or dropped):
//! in-flight counts, the request counter and duration histogram, and the access
//! log line — all recorded once, when it ends.

use crate::access_log::Pending;
use crate::idle::IdleConns;
use crate::service_route::{PoolRoute, ServiceRoute};
use std::sync::Arc;
use std::time::Instant;

/// Travels inside the response body; its drop is the end of the request.
/// It holds the service `Arc` (which keeps its pools and backends alive) and
/// indices, rather than an `Arc` per counter: one reference count per request.
pub struct Tracker {
    service: Arc<ServiceRoute>,
    pool: usize,
    backend: usize,
    start: Instant,
    status: u16,
    bytes: u64,
    log: Option<Box<Pending>>,
}

impl Tracker {
    /// Counts the request in flight on the backend and its pool from now on.
    pub(crate) fn begin(service: Arc<ServiceRoute>, pool: usize, backend: usize, start: Instant) -> Tracker {
        let t = Tracker { service, pool, backend, start, status: 0, bytes: 0, log: None };
        let p = t.pool();
        p.backends[backend].start();
        p.stats.start();
        t
    }

    fn pool(&self) -> &PoolRoute {
        &self.service.pools[self.pool]
    }

    /// The response status, once the head has arrived: counted in the pool's live
    /// figures now, with the time to first byte (an upgrade's 101 is not).
    pub(crate) fn set_status(&mut self, status: u16) {
        self.status = status;
        if status != 101 {
            self.pool().stats.record(status, self.start.elapsed());
        }
    }

    /// The access log line to write when the request ends.
    pub(crate) fn set_log(&mut self, log: Option<Box<Pending>>) {
        self.log = log;
    }

    /// The idle HTTP/1 connections of the backend this request went to.
    pub(crate) fn conns(&self) -> &Arc<IdleConns> {
        &self.pool().conns[self.backend]
    }

    /// Counts body bytes sent to the client.
    pub(crate) fn add_bytes(&mut self, n: usize) {
        self.bytes += n as u64;
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        let pool = &self.service.pools[self.pool];
        pool.backends[self.backend].finish();
        pool.stats.finish();
        // A tracker dropped before any response head (the request failed) is
        // recorded by the caller as the proxy's own answer instead.
        if self.status != 0 {
            pool.metrics.record(self.status, elapsed);
            if let Some(log) = self.log.take() {
                log.finish(self.status, self.bytes, elapsed);
            }
        }
    }
}
