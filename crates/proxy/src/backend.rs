//! Backends and per-pool counters: shared, lock-free state that outlives table swaps.

use http::uri::Authority;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// One upstream server. Health is written by the control side and read here with
/// plain atomic loads, so the hot path never takes a lock.
#[derive(Debug)]
pub struct Backend {
    address: Box<str>,
    authority: Option<Authority>,
    inflight: AtomicU64,
    healthy: AtomicBool,
}

impl Backend {
    /// A backend at `host:port`, healthy until a check says otherwise.
    pub fn new(address: &str) -> Backend {
        Backend {
            address: address.into(),
            authority: address.parse().ok(),
            inflight: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
        }
    }

    /// `host:port` as configured.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub(crate) fn authority(&self) -> Option<&Authority> {
        self.authority.as_ref()
    }

    /// Requests (and response bodies) in flight to it now.
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Relaxed)
    }

    /// Whether it may be picked.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// Marks it healthy or not (health checks, passive ejection).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Relaxed);
    }
}

/// Counters of one pool that outlive table swaps.
#[derive(Debug, Default)]
pub struct PoolStats {
    inflight: AtomicU64,
}

impl PoolStats {
    /// Requests in flight on this pool now, response bodies included.
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Relaxed)
    }
}

/// Counts a request in flight on a backend and its pool until dropped; it travels
/// inside the response body, so a streaming response counts until its last byte.
pub struct Inflight {
    backend: Arc<Backend>,
    pool: Arc<PoolStats>,
}

impl Inflight {
    pub(crate) fn start(backend: Arc<Backend>, pool: Arc<PoolStats>) -> Inflight {
        backend.inflight.fetch_add(1, Relaxed);
        pool.inflight.fetch_add(1, Relaxed);
        Inflight { backend, pool }
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.backend.inflight.fetch_sub(1, Relaxed);
        self.pool.inflight.fetch_sub(1, Relaxed);
    }
}
