//! Handles resolved once per (service, pool) when a routing table is built, so
//! recording on the request path is an atomic add — no label hashing, no lookup.

use crate::names;
use metrics::{Counter, Histogram};
use std::sync::OnceLock;
use std::time::Duration;

/// `switchyard_requests_total` for one (service, pool), one counter per status class.
pub struct StatusCounters([Counter; 5]);

impl StatusCounters {
    /// Resolves the five counters (`1xx` … `5xx`).
    pub fn new(service: &str, pool: &str) -> StatusCounters {
        let c = |class: &'static str| metrics::counter!(names::REQUESTS, "service" => service.to_owned(), "pool" => pool.to_owned(), "code" => class);
        StatusCounters([c("1xx"), c("2xx"), c("3xx"), c("4xx"), c("5xx")])
    }

    /// Counts one response with this status.
    pub fn count(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.0[class].increment(1);
    }
}

/// Everything the request path records for one pool.
pub struct PoolMetrics {
    /// Responses by status class.
    pub requests: StatusCounters,
    duration: Histogram,
    connect_errors: Counter,
    timeout_errors: Counter,
    reset_errors: Counter,
    connect_retries: Counter,
    reused_closed_retries: Counter,
}

impl PoolMetrics {
    /// Resolves the handles for one pool.
    pub fn new(service: &str, pool: &str) -> PoolMetrics {
        let err = |kind: &'static str| metrics::counter!(names::UPSTREAM_ERRORS, "service" => service.to_owned(), "pool" => pool.to_owned(), "kind" => kind);
        let retry = |reason: &'static str| metrics::counter!(names::UPSTREAM_RETRIES, "service" => service.to_owned(), "pool" => pool.to_owned(), "reason" => reason);
        PoolMetrics {
            requests: StatusCounters::new(service, pool),
            duration: metrics::histogram!(names::DURATION, "service" => service.to_owned(), "pool" => pool.to_owned()),
            connect_errors: err("connect"),
            timeout_errors: err("timeout"),
            reset_errors: err("reset"),
            connect_retries: retry("connect"),
            reused_closed_retries: retry("reused_closed"),
        }
    }

    /// Records a finished response.
    pub fn record(&self, status: u16, elapsed: Duration) {
        self.requests.count(status);
        self.duration.record(elapsed.as_secs_f64());
    }

    /// Counts an upstream error of `kind` (`connect`, `timeout`, anything else = `reset`).
    pub fn upstream_error(&self, kind: &str) {
        match kind {
            "connect" => self.connect_errors.increment(1),
            "timeout" => self.timeout_errors.increment(1),
            _ => self.reset_errors.increment(1),
        }
    }

    /// Counts a request sent again after a refused connect, to another backend.
    pub fn retry_connect(&self) {
        self.connect_retries.increment(1);
    }

    /// Counts a request sent again after a reused keep-alive connection closed unanswered.
    pub fn retry_reused_closed(&self) {
        self.reused_closed_retries.increment(1);
    }
}

/// A pool's `PoolMetrics`, resolved at its first use: a pool that never serves
/// registers no series and holds ~60 bytes instead of eleven series (~5 KB).
pub struct LazyPoolMetrics {
    service: Box<str>,
    pool: Box<str>,
    resolved: OnceLock<PoolMetrics>,
}

impl LazyPoolMetrics {
    /// Handles for one pool, not resolved yet.
    pub fn new(service: &str, pool: &str) -> LazyPoolMetrics {
        LazyPoolMetrics { service: service.into(), pool: pool.into(), resolved: OnceLock::new() }
    }

    /// The handles, resolved on first call (against the recorder installed then).
    pub fn get(&self) -> &PoolMetrics {
        self.resolved.get_or_init(|| PoolMetrics::new(&self.service, &self.pool))
    }
}

impl std::ops::Deref for LazyPoolMetrics {
    type Target = PoolMetrics;

    fn deref(&self) -> &PoolMetrics {
        self.get()
    }
}
