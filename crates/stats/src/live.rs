//! One pool's live figures: the counters the request path bumps and the ring of
//! one-second samples behind a mutex that only the sampler and readers take.

use crate::counters::{Counters, Snapshot};
use crate::ring::Ring;
use crate::window::{Point, Window};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Counters and samples of one pool.
#[derive(Debug, Default)]
pub struct Live {
    counters: Counters,
    ring: Mutex<Sampled>,
}

#[derive(Debug, Default)]
struct Sampled {
    ring: Ring,
    /// Unix seconds of tick 0, fixed at the first sample.
    epoch: Option<u64>,
}

impl Live {
    /// Counts one answer (request path: atomic adds only).
    pub fn record(&self, status: u16, ttfb: Duration) {
        self.counters.record(status, ttfb);
    }

    /// See [`Counters::take_max_error_run`].
    pub fn take_max_error_run(&self) -> u64 {
        self.counters.take_max_error_run()
    }

    /// See [`Counters::reset_error_run`].
    pub fn reset_error_run(&self) {
        self.counters.reset_error_run();
    }

    /// The cumulative counters now.
    pub fn snapshot(&self) -> Snapshot {
        self.counters.snapshot()
    }

    fn ring(&self) -> MutexGuard<'_, Sampled> {
        // A panic elsewhere while holding it leaves nothing half-written that matters.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the sample of tick `tick` (seconds since the sampler started).
    pub fn sample(&self, tick: u64) {
        let mut s = self.ring();
        // An idle second (most pools, most seconds): five loads, no bucket scan.
        if s.ring.latest_tick().is_some() && self.counters.total() == s.ring.last_total() {
            s.ring.idle(tick);
            return;
        }
        let now = self.counters.snapshot();
        if s.epoch.is_none() {
            let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            s.epoch = Some(unix.saturating_sub(tick));
        }
        s.ring.sample(tick, &now);
    }

    /// The latest tick sampled, if any.
    pub fn latest_tick(&self) -> Option<u64> {
        self.ring().ring.latest_tick()
    }

    /// Unix seconds of the end of tick `tick`, once a sample was taken.
    pub fn unix_time(&self, tick: u64) -> Option<u64> {
        self.ring().epoch.map(|e| e.saturating_add(tick))
    }

    /// The figures of ticks `(from, to]`.
    pub fn window(&self, from: u64, to: u64) -> Window {
        self.ring().ring.window(from, to)
    }

    /// See [`Ring::series`].
    pub fn series(&self, from: u64, to: u64, step: u64) -> Vec<Point> {
        self.ring().ring.series(from, to, step)
    }
}
