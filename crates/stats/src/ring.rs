//! One-second samples for 15 minutes, keyed by tick (seconds since the sampler
//! started). Each sample is the difference from the previous one, stored sparsely
//! — only the buckets that moved, nothing at all for a second without requests —
//! so an idle pool holds next to nothing and any window is a sum of samples.

use crate::counters::Snapshot;
use crate::window::{Point, Window};
use std::collections::VecDeque;

/// How many one-second samples are kept: 15 minutes.
pub const RING_SECONDS: u64 = 900;

/// What changed during one second that saw requests.
struct Delta {
    tick: u64,
    classes: [u64; 5],
    /// (bucket, count) of the buckets that moved.
    buckets: Box<[(u16, u32)]>,
}

/// The samples of one pool.
#[derive(Default)]
pub struct Ring {
    /// The cumulative counters at the latest sample (the base of the next delta).
    last: Box<Snapshot>,
    latest: Option<u64>,
    /// Oldest first, ticks strictly increasing, none older than `latest - RING_SECONDS`.
    samples: VecDeque<Delta>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring").field("latest", &self.latest).field("samples", &self.samples.len()).finish()
    }
}

impl Ring {
    /// Records the cumulative counters `now` as of tick `tick`: what moved since the
    /// previous sample belongs to `tick`. A tick not after the latest one is ignored.
    pub fn sample(&mut self, tick: u64, now: &Snapshot) {
        if self.latest.is_some_and(|l| tick <= l) {
            return;
        }
        let classes: [u64; 5] = std::array::from_fn(|i| now.classes[i].saturating_sub(self.last.classes[i]));
        let buckets: Box<[(u16, u32)]> = (now.buckets.iter().zip(self.last.buckets.iter()))
            .enumerate()
            .filter(|(_, (n, l))| n > l)
            .map(|(i, (n, l))| (i as u16, u32::try_from(n - l).unwrap_or(u32::MAX)))
            .collect();
        if classes.iter().any(|&c| c > 0) || !buckets.is_empty() {
            self.samples.push_back(Delta { tick, classes, buckets });
        }
        *self.last = now.clone();
        self.idle(tick);
    }

    /// Records that nothing moved in tick `tick` (what `sample` does when `now`
    /// equals the latest snapshot, without comparing the buckets).
    pub fn idle(&mut self, tick: u64) {
        if self.latest.is_some_and(|l| tick <= l) {
            return;
        }
        self.latest = Some(tick);
        while self.samples.front().is_some_and(|d| d.tick + RING_SECONDS <= tick) {
            self.samples.pop_front();
        }
        // A pool that went quiet gives its memory back.
        if self.samples.len() < self.samples.capacity() / 4 {
            self.samples.shrink_to(self.samples.len() * 2);
        }
    }

    /// The latest tick sampled, if any.
    pub fn latest_tick(&self) -> Option<u64> {
        self.latest
    }

    /// Answers counted at the latest sample (all classes).
    pub fn last_total(&self) -> u64 {
        self.last.classes.iter().sum()
    }

    /// The samples in ticks `(from, to]`, oldest first.
    fn range(&self, from: u64, to: u64) -> impl Iterator<Item = &Delta> {
        let start = self.samples.partition_point(|d| d.tick <= from);
        self.samples.range(start..).take_while(move |d| d.tick <= to)
    }

    /// The sum of the samples in ticks `(from, to]` (only the last 15 minutes are kept).
    pub fn window(&self, from: u64, to: u64) -> Window {
        let mut w = Window::default();
        for d in self.range(from, to) {
            add(&mut w, d);
        }
        w
    }

    /// Ticks `(from, to]` cut into points of `step` ticks ending at `to`, oldest first
    /// (the oldest may be cut short by `from`). At most [`RING_SECONDS`] points, the
    /// latest; none when `step` is 0 or `from >= to`.
    pub fn series(&self, from: u64, to: u64, step: u64) -> Vec<Point> {
        if step == 0 || from >= to {
            return Vec::new();
        }
        let n = (to - from).div_ceil(step).min(RING_SECONDS);
        let first_end = to - (n - 1) * step;
        let mut points = Vec::with_capacity(n as usize);
        let mut samples = self.range(from, to).peekable();
        let mut w = Window::default();
        for j in 0..n {
            let end = first_end + j * step;
            w.clear();
            while let Some(d) = samples.next_if(|d| d.tick <= end) {
                // Before the first point (when more than RING_SECONDS points were asked): skipped.
                if end - d.tick < step {
                    add(&mut w, d);
                }
            }
            points.push(Point { end, requests: w.requests, errors: w.errors, p99: w.quantile(0.99) });
        }
        points
    }

    /// Bytes this ring holds on the heap (for tests of its footprint).
    pub fn heap_bytes(&self) -> usize {
        size_of::<Snapshot>()
            + self.samples.capacity() * size_of::<Delta>()
            + self.samples.iter().map(|d| d.buckets.len() * size_of::<(u16, u32)>()).sum::<usize>()
    }
}

fn add(w: &mut Window, d: &Delta) {
    w.add_classes(&d.classes);
    for &(i, n) in &d.buckets {
        w.add_bucket(usize::from(i), u64::from(n));
    }
}
