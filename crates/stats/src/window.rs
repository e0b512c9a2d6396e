//! Figures over a span of one-second samples: what the admin API's `/stats`
//! shows and what a rollout judges.

use crate::histogram::{self, BUCKETS};
use std::fmt;
use std::time::Duration;

/// Requests, errors and the latency histogram of the samples in ticks `(from, to]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Window {
    /// Requests answered (every status class).
    pub requests: u64,
    /// 5xx answers, the proxy's own 502/503/504 included.
    pub errors: u64,
    /// Requests by status class, 1xx … 5xx.
    pub classes: [u64; 5],
    /// Counts per latency bucket; bounds from [`Window::bucket_bounds`].
    pub buckets: Box<[u64; BUCKETS]>,
}

impl Default for Window {
    fn default() -> Window {
        Window { requests: 0, errors: 0, classes: [0; 5], buckets: Box::new([0; BUCKETS]) }
    }
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Window")
            .field("requests", &self.requests)
            .field("errors", &self.errors)
            .field("classes", &self.classes)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .finish()
    }
}

impl Window {
    /// Errors / requests; 0 when there was no request.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }

    /// The `q` quantile (0 ≤ q ≤ 1) of time to first byte, within 6.25 % of the
    /// exact value for latencies from 32 µs to 134 s (above: 134 s); `None` when
    /// nothing was counted.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        histogram::quantile(&self.buckets[..], q)
    }

    /// The counts per latency bucket, in increasing order of latency.
    pub fn buckets(&self) -> &[u64] {
        &self.buckets[..]
    }

    /// Bounds `[lower, upper)` of bucket `i` (the same for every pool and window).
    pub fn bucket_bounds(i: usize) -> (Duration, Duration) {
        histogram::bucket_bounds(i)
    }

    /// Adds one status class count.
    pub(crate) fn add_classes(&mut self, classes: &[u64; 5]) {
        for (to, from) in self.classes.iter_mut().zip(classes) {
            *to = to.saturating_add(*from);
        }
        self.requests = self.classes.iter().fold(0u64, |a, &c| a.saturating_add(c));
        self.errors = self.classes[4];
    }

    /// Adds a count to a bucket (ignored past the last).
    pub(crate) fn add_bucket(&mut self, i: usize, n: u64) {
        if let Some(b) = self.buckets.get_mut(i) {
            *b = b.saturating_add(n);
        }
    }

    /// Back to empty, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.requests = 0;
        self.errors = 0;
        self.classes = [0; 5];
        self.buckets.fill(0);
    }
}

/// One point of a series (for sparklines): the ticks `(end - step, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// The last tick it covers.
    pub end: u64,
    /// Requests answered.
    pub requests: u64,
    /// 5xx answers.
    pub errors: u64,
    /// 99th percentile of time to first byte; `None` without requests.
    pub p99: Option<Duration>,
}
