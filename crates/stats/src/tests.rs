//! The ring against brute force, and the quantile error bound against exact
//! quantiles of known samples.

#![allow(clippy::unwrap_used)]

use crate::histogram::{self, BUCKETS};
use crate::{Counters, RING_SECONDS, Ring, Snapshot, Window};
use proptest::prelude::*;
use std::time::Duration;

/// A small deterministic generator (xorshift64*), enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The exact nearest-rank quantile of `values`.
fn exact(values: &[Duration], q: f64) -> Duration {
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn histogram_of(values: &[Duration]) -> Window {
    let c = Counters::default();
    for &v in values {
        c.record(200, v);
    }
    let mut ring = Ring::default();
    ring.sample(1, &c.snapshot());
    ring.window(0, 1)
}

fn relative_error(estimate: Duration, exact: Duration) -> f64 {
    estimate.abs_diff(exact).as_secs_f64() / exact.as_secs_f64()
}

/// Samples (in ns precision) of a few latency shapes, 50 µs to ~60 s.
fn distributions() -> Vec<(&'static str, Vec<Duration>)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let n = 20_000;
    let ns = |x: f64| Duration::from_nanos(x as u64);
    let uniform = (0..n).map(|_| ns(100_000.0 + rng.unit() * 9_900_000.0)).collect();
    // Log-uniform over 50 µs … 60 s: every octave equally likely.
    let log_uniform = (0..n).map(|_| ns(50_000.0 * (1.2e6f64).powf(rng.unit()))).collect();
    let exponential = (0..n).map(|_| ns(2_000_000.0 * -(1.0 - rng.unit()).ln() + 60_000.0)).collect();
    // Fast cache hits with a slow 3 % tail: the p99 sits in the tail.
    let bimodal = (0..n)
        .map(|_| if rng.unit() < 0.97 { ns(200_000.0 + rng.unit() * 50_000.0) } else { ns(4e8 + rng.unit() * 1e8) })
        .collect();
    // Log-normal around 3 ms (Box-Muller).
    let log_normal = (0..n)
        .map(|_| {
            let z = (-2.0 * (1.0 - rng.unit()).ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos();
            ns(3e6 * (0.8 * z).exp() + 40_000.0)
        })
        .collect();
    let constant = vec![Duration::from_micros(1234); 500];
    vec![
        ("uniform", uniform),
        ("log-uniform", log_uniform),
        ("exponential", exponential),
        ("bimodal", bimodal),
        ("log-normal", log_normal),
        ("constant", constant),
    ]
}

#[test]
fn quantiles_are_within_ten_percent_of_exact_on_known_distributions() {
    for (name, values) in distributions() {
        let w = histogram_of(&values);
        assert_eq!(w.requests, values.len() as u64);
        for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let (est, ex) = (w.quantile(q).unwrap(), exact(&values, q));
            let err = relative_error(est, ex);
            // 6.25 % from the bucket width, plus < 1 µs of truncation on ≥ 32 µs values.
            assert!(err <= 0.10, "{name} q={q}: estimate {est:?} vs exact {ex:?} ({:.2} %)", err * 100.0);
        }
    }
}

proptest! {
    #[test]
    fn quantile_error_bound_holds_for_any_sample(
        values in prop::collection::vec(32u64..(1 << 27), 1..400),
        q in 0.0f64..=1.0,
    ) {
        let durations: Vec<Duration> = values.iter().map(|&us| Duration::from_micros(us)).collect();
        let w = histogram_of(&durations);
        let (est, ex) = (w.quantile(q).unwrap(), exact(&durations, q));
        // On whole microseconds the bound is the half bucket width: 1/16.
        prop_assert!(relative_error(est, ex) <= 0.0625, "estimate {:?} vs exact {:?}", est, ex);
    }

    #[test]
    fn windows_are_sums_of_the_seconds_they_cover(
        // (tick offset, status, latency µs) per request, ticks 1..=40.
        requests in prop::collection::vec((1u64..=40, 1u16..=5, 0u64..5_000_000), 0..300),
        from in 0u64..45,
        len in 0u64..45,
        step in 1u64..12,
    ) {
        let to = from + len;
        let mut by_tick: Vec<Vec<(u16, u64)>> = vec![Vec::new(); 41];
        for &(t, class, us) in &requests {
            by_tick[t as usize].push((class * 100, us));
        }
        let c = Counters::default();
        let mut ring = Ring::default();
        for (t, reqs) in by_tick.iter().enumerate() {
            for &(status, us) in reqs {
                c.record(status, Duration::from_micros(us));
            }
            ring.sample(t as u64, &c.snapshot());
        }
        let brute = |a: u64, b: u64| {
            let mut w = Window::default();
            for &(t, class, us) in requests.iter().filter(|r| r.0 > a && r.0 <= b) {
                let _ = t;
                w.classes[usize::from(class) - 1] += 1;
                w.buckets[histogram::bucket_of_micros(us)] += 1;
            }
            w.requests = w.classes.iter().sum();
            w.errors = w.classes[4];
            w
        };
        prop_assert_eq!(ring.window(from, to), brute(from, to));
        // The series covers the same ticks, point by point.
        let points = ring.series(from, to, step);
        prop_assert_eq!(points.len() as u64, len.div_ceil(step));
        prop_assert_eq!(points.iter().map(|p| p.requests).sum::<u64>(), brute(from, to).requests);
        for p in &points {
            let w = brute(p.end.saturating_sub(step).max(from), p.end);
            prop_assert_eq!((p.requests, p.errors, p.p99), (w.requests, w.errors, w.quantile(0.99)));
        }
        if let Some(last) = points.last() {
            prop_assert_eq!(last.end, to);
        }
    }
}

fn snapshot_with(requests: u64) -> Snapshot {
    let mut s = Snapshot::default();
    s.classes[1] = requests;
    s.buckets[40] = requests;
    s
}

#[test]
fn only_the_last_fifteen_minutes_are_kept() {
    let mut ring = Ring::default();
    for t in 1..=2000 {
        ring.sample(t, &snapshot_with(t));
    }
    assert_eq!(ring.latest_tick(), Some(2000));
    // One request per second; ticks 1101..=2000 are left.
    assert_eq!(ring.window(0, 2000).requests, RING_SECONDS);
    assert_eq!(ring.window(1999, 2000).requests, 1);
    assert_eq!(ring.window(0, 1100).requests, 0);
    assert_eq!(ring.series(0, 2000, 1).len() as u64, RING_SECONDS, "at most 900 points");
    assert_eq!(ring.series(0, 2000, 1)[0].end, 1101);
}

#[test]
fn stale_and_repeated_ticks_are_ignored() {
    let mut ring = Ring::default();
    ring.sample(5, &snapshot_with(3));
    ring.sample(5, &snapshot_with(10));
    ring.sample(4, &snapshot_with(10));
    assert_eq!(ring.window(0, 10).requests, 3);
    // What those ignored samples saw is counted by the next one.
    ring.sample(6, &snapshot_with(10));
    assert_eq!(ring.window(5, 6).requests, 7);
}

#[test]
fn an_idle_ring_stays_tiny_and_a_quiet_one_gives_memory_back() {
    let idle_limit = size_of::<Snapshot>() + 512;
    let mut ring = Ring::default();
    for t in 0..3 * RING_SECONDS {
        ring.sample(t, &Snapshot::default());
    }
    assert!(ring.heap_bytes() <= idle_limit, "idle: {} bytes", ring.heap_bytes());
    // Busy for 15 minutes, every bucket moving every second...
    let mut s = Snapshot::default();
    let mut t = 3 * RING_SECONDS;
    for _ in 0..RING_SECONDS {
        t += 1;
        s.classes[1] += BUCKETS as u64;
        s.buckets.iter_mut().for_each(|b| *b += 1);
        ring.sample(t, &s);
    }
    let busy = ring.heap_bytes();
    assert!(busy > 900 * BUCKETS * 6, "busy: {busy} bytes");
    // ... then quiet for 15 minutes.
    for _ in 0..RING_SECONDS {
        t += 1;
        ring.sample(t, &s);
    }
    assert!(ring.heap_bytes() <= idle_limit, "quiet again: {} bytes", ring.heap_bytes());
    assert_eq!(ring.window(0, t).requests, 0);
}

#[test]
fn series_edges() {
    let mut ring = Ring::default();
    ring.sample(10, &snapshot_with(4));
    assert!(ring.series(10, 10, 1).is_empty());
    assert!(ring.series(0, 10, 0).is_empty());
    let p = ring.series(0, 10, 3);
    assert_eq!(p.iter().map(|p| p.end).collect::<Vec<_>>(), [1, 4, 7, 10]);
    assert_eq!(p[3].requests, 4);
    assert_eq!(p[0].p99, None);
    assert!(p[3].p99.is_some());
}

#[test]
fn live_keeps_unix_time_of_ticks() {
    let live = crate::Live::default();
    assert_eq!(live.unix_time(3), None);
    assert_eq!(live.latest_tick(), None);
    live.record(503, Duration::from_millis(3));
    live.sample(7);
    let t7 = live.unix_time(7).unwrap();
    assert_eq!(live.unix_time(8), Some(t7 + 1));
    assert_eq!(live.latest_tick(), Some(7));
    assert_eq!(live.window(6, 7).errors, 1);
    assert_eq!(live.take_max_error_run(), 1);
}

#[test]
fn idle_seconds_skip_the_bucket_scan_and_windows_stay_exact() {
    let live = crate::Live::default();
    live.record(200, Duration::from_millis(3));
    live.sample(1);
    for tick in 2..=50 {
        live.sample(tick);
    }
    assert_eq!(live.latest_tick(), Some(50), "idle seconds still move the clock");
    live.record(503, Duration::from_millis(40));
    live.record(200, Duration::from_millis(40));
    live.sample(51);
    let w = live.window(50, 51);
    assert_eq!((w.requests, w.errors), (2, 1));
    assert!(w.quantile(0.01).unwrap() > Duration::from_millis(30), "only the new answers' buckets: {w:?}");
    assert_eq!(live.window(0, 51).requests, 3);
    assert_eq!(live.window(1, 50).requests, 0);
}
