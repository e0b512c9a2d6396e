//! Backends and per-pool counters: shared, lock-free state that outlives table
//! swaps. Health is written by checkers (and passive ejection) with atomic stores
//! and read by the picker with relaxed loads.

use http::uri::Authority;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use switchyard_stats::{Live, Point, Window};
use tokio::time::Instant;

/// Longest passive ejection.
const MAX_EJECTION: Duration = Duration::from_secs(60);
/// First passive ejection; doubles with each further consecutive failure.
const FIRST_EJECTION: Duration = Duration::from_secs(1);

/// One upstream server.
#[derive(Debug)]
pub struct Backend {
    address: Box<str>,
    authority: Option<Authority>,
    inflight: AtomicU64,
    /// The active health checks' verdict.
    healthy: AtomicBool,
    /// Set by consecutive connect failures until `ejected_until`.
    ejected: AtomicBool,
    ejected_until_ms: AtomicU64,
    connect_failures: AtomicU32,
}

/// Milliseconds on tokio's clock (so that tests on a paused clock see back-off pass),
/// from an epoch taken at first use. A runtime whose paused clock lags behind that
/// epoch reads values below `MID` rather than a stuck 0, so its own deadlines still pass.
fn now_ms() -> u64 {
    const MID: u64 = 1 << 40;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let now = Instant::now();
    let epoch = *EPOCH.get_or_init(|| now);
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    match now.checked_duration_since(epoch) {
        Some(d) => MID.saturating_add(ms(d)),
        None => MID.saturating_sub(ms(epoch.duration_since(now))),
    }
}

impl Backend {
    /// A backend at `host:port`, healthy until a check says otherwise.
    pub fn new(address: &str) -> Backend {
        Backend {
            address: address.into(),
            authority: address.parse().ok(),
            inflight: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            ejected: AtomicBool::new(false),
            ejected_until_ms: AtomicU64::new(0),
            connect_failures: AtomicU32::new(0),
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

    /// May it be picked: healthy by the checks and not passively ejected.
    /// The clock is read only while an ejection is in force.
    pub fn is_healthy(&self) -> bool {
        self.is_check_healthy() && !(self.ejected.load(Relaxed) && now_ms() < self.ejected_until_ms.load(Relaxed))
    }

    /// The active health checks' verdict alone.
    pub fn is_check_healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// Records the health checks' verdict; returns whether it changed.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Relaxed) != healthy
    }

    /// A connect to it failed: eject it for 1 s, 2 s, 4 s … up to 60 s.
    pub fn connect_failed(&self) {
        let n = self.connect_failures.fetch_add(1, Relaxed).saturating_add(1);
        let backoff = FIRST_EJECTION.saturating_mul(1 << n.saturating_sub(1).min(6)).min(MAX_EJECTION);
        let ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
        self.ejected_until_ms.store(now_ms().saturating_add(ms), Relaxed);
        self.ejected.store(true, Relaxed);
        tracing::warn!(backend = %self.address, consecutive = n, ?backoff, "connect failed; backend ejected");
    }

    /// A connect (or a probe) succeeded: end any ejection.
    pub fn connect_ok(&self) {
        if self.connect_failures.load(Relaxed) != 0 {
            self.connect_failures.store(0, Relaxed);
            if self.ejected.swap(false, Relaxed) {
                tracing::info!(backend = %self.address, "backend reachable again; ejection ended");
            }
        }
    }

    pub(crate) fn start(&self) {
        self.inflight.fetch_add(1, Relaxed);
    }

    pub(crate) fn finish(&self) {
        self.inflight.fetch_sub(1, Relaxed);
    }
}

/// Counters of one pool that outlive table swaps: in-flight counts, and the live
/// figures (`switchyard_stats::Live`) that `/stats` and rollouts read back. The
/// live figures (~3 KB) are allocated at the pool's first answer: a pool that
/// never served holds none, and the sampler passes it by.
#[derive(Debug, Default)]
pub struct PoolStats {
    inflight: AtomicU64,
    upgraded: AtomicU64,
    live: OnceLock<Box<Live>>,
}

impl PoolStats {
    /// Counts one answer: its status and time to first byte (request head received →
    /// response head). Atomic adds only: this is on the request path.
    pub fn record(&self, status: u16, ttfb: Duration) {
        self.live.get_or_init(Box::default).record(status, ttfb);
    }

    /// Takes the one-second sample of tick `tick` (the sampler calls this).
    pub fn sample(&self, tick: u64) {
        if let Some(live) = self.live.get() {
            live.sample(tick);
        }
    }

    /// Requests, errors and latencies of the samples in ticks `(from_tick, to_tick]`.
    pub fn window(&self, from_tick: u64, to_tick: u64) -> Window {
        self.live.get().map_or_else(Window::default, |l| l.window(from_tick, to_tick))
    }

    /// Ticks `(from_tick, to_tick]` in points of `step` ticks (see `switchyard_stats::Ring::series`).
    pub fn series(&self, from_tick: u64, to_tick: u64, step: u64) -> Vec<Point> {
        self.live.get().map_or_else(Vec::new, |l| l.series(from_tick, to_tick, step))
    }

    /// The latest tick sampled; `None` before the first sample (or the first answer).
    pub fn latest_tick(&self) -> Option<u64> {
        self.live.get().and_then(|l| l.latest_tick())
    }

    /// Unix seconds at the end of `tick`, once a sample was taken.
    pub fn unix_time(&self, tick: u64) -> Option<u64> {
        self.live.get().and_then(|l| l.unix_time(tick))
    }

    /// The longest run of consecutive 5xx since the last call; resets it.
    pub fn take_max_error_run(&self) -> u64 {
        self.live.get().map_or(0, |l| l.take_max_error_run())
    }

    /// Forgets every run of 5xx so far, the one going on included.
    pub fn reset_error_run(&self) {
        if let Some(live) = self.live.get() {
            live.reset_error_run();
        }
    }

    /// Requests in flight on this pool now, response bodies included.
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Relaxed)
    }

    pub(crate) fn start(&self) {
        self.inflight.fetch_add(1, Relaxed);
    }

    pub(crate) fn finish(&self) {
        self.inflight.fetch_sub(1, Relaxed);
    }

    /// Upgraded (WebSocket) connections open on this pool now.
    pub fn upgraded(&self) -> u64 {
        self.upgraded.load(Relaxed)
    }

    pub(crate) fn tunnel_opened(&self) {
        self.upgraded.fetch_add(1, Relaxed);
    }

    pub(crate) fn tunnel_closed(&self) {
        self.upgraded.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_failure_ejects_until_success() {
        let b = Backend::new("127.0.0.1:1");
        assert!(b.is_healthy());
        b.connect_failed();
        assert!(!b.is_healthy());
        assert!(b.is_check_healthy());
        b.connect_ok();
        assert!(b.is_healthy());
    }

    #[test]
    fn set_healthy_reports_changes() {
        let b = Backend::new("127.0.0.1:1");
        assert!(!b.set_healthy(true));
        assert!(b.set_healthy(false));
        assert!(!b.is_healthy());
    }
}
