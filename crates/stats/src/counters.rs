//! What the request path bumps: per-pool cumulative counters, atomics only.

use crate::histogram::{BUCKETS, bucket_of};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Index of a status class in `classes` (1xx → 0 … 5xx → 4; anything else clamps).
pub fn class_of(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// Requests by status class, a time-to-first-byte histogram and the current run
/// of consecutive 5xx, since the pool was created. Recording is a few relaxed
/// atomic adds; nothing allocates or locks.
pub struct Counters {
    classes: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS],
    /// Consecutive 5xx answers right now.
    run: AtomicU64,
    /// The longest such run since `take_max_error_run` last read it.
    max_run: AtomicU64,
}

/// A copy of the cumulative counters at one moment.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests by status class (1xx … 5xx).
    pub classes: [u64; 5],
    /// Counts per latency bucket (see [`crate::histogram`]).
    pub buckets: [u64; BUCKETS],
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot { classes: [0; 5], buckets: [0; BUCKETS] }
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot").field("classes", &self.classes).finish_non_exhaustive()
    }
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            classes: [const { AtomicU64::new(0) }; 5],
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            run: AtomicU64::new(0),
            max_run: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let classes: [u64; 5] = std::array::from_fn(|i| self.classes[i].load(Relaxed));
        f.debug_struct("Counters").field("classes", &classes).finish_non_exhaustive()
    }
}

impl Counters {
    /// Counts one answer with `status`, whose head went out `ttfb` after the request head came in.
    pub fn record(&self, status: u16, ttfb: Duration) {
        let class = class_of(status);
        self.classes[class].fetch_add(1, Relaxed);
        self.buckets[bucket_of(ttfb)].fetch_add(1, Relaxed);
        if class == 4 {
            let run = self.run.fetch_add(1, Relaxed).wrapping_add(1);
            // Written only when a new longest run starts or grows.
            if run > self.max_run.load(Relaxed) {
                self.max_run.fetch_max(run, Relaxed);
            }
        } else if self.run.load(Relaxed) != 0 {
            // Stored only when a run ends: a healthy pool never writes this line.
            self.run.store(0, Relaxed);
        }
    }

    /// The longest run of consecutive 5xx seen since the last call (a run still
    /// going on counts with its length so far, and keeps counting); resets it.
    pub fn take_max_error_run(&self) -> u64 {
        self.max_run.swap(0, Relaxed)
    }

    /// Forgets every 5xx run so far, the one still going on included (a rollout
    /// judges only the runs that happen while it runs).
    pub fn reset_error_run(&self) {
        self.run.store(0, Relaxed);
        self.max_run.store(0, Relaxed);
    }

    /// Answers counted so far (all classes): five loads, to tell an idle second cheaply.
    pub fn total(&self) -> u64 {
        self.classes.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The counters now. Not one atomic read: a request recorded meanwhile may be
    /// in the classes and not yet in the buckets (it shows up in the next snapshot).
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        for (to, from) in s.classes.iter_mut().zip(&self.classes) {
            *to = from.load(Relaxed);
        }
        for (to, from) in s.buckets.iter_mut().zip(&self.buckets) {
            *to = from.load(Relaxed);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_buckets_and_error_runs() {
        let c = Counters::default();
        let ms = Duration::from_millis;
        for status in [101, 200, 204, 302, 404, 500, 502, 503, 200, 503, 99, 700] {
            c.record(status, ms(2));
        }
        let s = c.snapshot();
        // 99 clamps to 1xx, 700 to 5xx.
        assert_eq!(s.classes, [2, 3, 1, 1, 5]);
        assert_eq!(s.buckets.iter().sum::<u64>(), 12);
        assert_eq!(s.buckets[bucket_of(ms(2))], 12);
        // Runs: 500 502 503 (3), then 503 (1), then 700 (1, still going).
        assert_eq!(c.take_max_error_run(), 3);
        assert_eq!(c.take_max_error_run(), 0, "reset by the read");
        c.record(500, ms(1));
        // The run that was going on continues: 700, 500.
        assert_eq!(c.take_max_error_run(), 2);
        c.record(200, ms(1));
        c.record(500, ms(1));
        assert_eq!(c.take_max_error_run(), 1);
    }
}
