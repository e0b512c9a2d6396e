//! The latency buckets: log-linear over microseconds, 8 sub-buckets per power of
//! two from 32 µs to 2^27 µs (≈ 134 s), plus one bucket below and one above —
//! 178 in all. A value's bucket is found with `leading_zeros` and shifts (no
//! float, no loop); each bucket is at most 1/8 of its lower bound wide, so its
//! midpoint is within 6.25 % of any value in it.

use std::time::Duration;

/// Sub-buckets per power of two: 2^3.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// The first power of two with sub-buckets: 2^5 µs = 32 µs (below: one bucket).
const MIN_EXP: u32 = 5;
/// Values of 2^27 µs (≈ 134 s) and more share the last bucket.
const MAX_EXP: u32 = 27;

/// How many buckets a histogram has.
pub const BUCKETS: usize = 2 + (MAX_EXP - MIN_EXP) as usize * SUB;

/// Whole microseconds of `d`, saturating.
pub fn micros(d: Duration) -> u64 {
    d.as_secs().saturating_mul(1_000_000).saturating_add(u64::from(d.subsec_micros()))
}

/// The bucket of a latency.
pub fn bucket_of(latency: Duration) -> usize {
    bucket_of_micros(micros(latency))
}

/// The bucket of a latency in whole microseconds.
pub fn bucket_of_micros(us: u64) -> usize {
    if us < 1 << MIN_EXP {
        return 0;
    }
    if us >= 1 << MAX_EXP {
        return BUCKETS - 1;
    }
    // MIN_EXP ≤ e < MAX_EXP: the top bit; the next SUB_BITS bits pick the sub-bucket.
    let e = 63 - us.leading_zeros();
    let sub = (us >> (e - SUB_BITS)) as usize & (SUB - 1);
    1 + (e - MIN_EXP) as usize * SUB + sub
}

/// Lower bound of bucket `i` in microseconds (inclusive); `u64::MAX` past the last.
pub fn lower_micros(i: usize) -> u64 {
    match i {
        0 => 0,
        i if i < BUCKETS - 1 => {
            let k = i - 1;
            let e = MIN_EXP + (k / SUB) as u32;
            ((SUB + k % SUB) as u64) << (e - SUB_BITS)
        }
        i if i == BUCKETS - 1 => 1 << MAX_EXP,
        _ => u64::MAX,
    }
}

/// Upper bound of bucket `i` in microseconds (exclusive); `u64::MAX` for the last.
pub fn upper_micros(i: usize) -> u64 {
    lower_micros(i.saturating_add(1))
}

/// Bounds of bucket `i`: `[lower, upper)`; the last bucket's upper bound is `Duration::MAX`.
pub fn bucket_bounds(i: usize) -> (Duration, Duration) {
    let d = |us: u64| if us == u64::MAX { Duration::MAX } else { Duration::from_micros(us) };
    (d(lower_micros(i)), d(upper_micros(i)))
}

/// The value a bucket stands for: its midpoint; the last (open) bucket stands for its lower bound.
pub fn representative(i: usize) -> Duration {
    let (lo, hi) = (lower_micros(i), upper_micros(i));
    if hi == u64::MAX {
        return Duration::from_micros(lo.min(1 << MAX_EXP));
    }
    Duration::from_nanos(lo * 1000 + (hi - lo) * 500)
}

/// The `q` quantile (0 ≤ q ≤ 1) of the values counted in `buckets` (nearest rank:
/// the bucket holding the ⌈q·n⌉-th smallest value, as its midpoint). `None` when
/// nothing was counted or `q` is not in [0, 1].
pub fn quantile(buckets: &[u64], q: f64) -> Option<Duration> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let total = buckets.iter().fold(0u64, |a, &c| a.saturating_add(c));
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (i, &c) in buckets.iter().enumerate() {
        seen = seen.saturating_add(c);
        if seen >= rank {
            return Some(representative(i));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_monotonic_contiguous_and_cover_every_value() {
        assert_eq!(BUCKETS, 178);
        assert_eq!(lower_micros(0), 0);
        for i in 0..BUCKETS - 1 {
            assert!(lower_micros(i) < upper_micros(i), "bucket {i}");
            assert_eq!(upper_micros(i), lower_micros(i + 1), "bucket {i} touches the next");
            // Width at most 1/8 of the lower bound (past the first bucket).
            if i > 0 {
                assert!((upper_micros(i) - lower_micros(i)) * 8 <= lower_micros(i), "bucket {i} width");
            }
        }
        assert_eq!(upper_micros(BUCKETS - 1), u64::MAX);
        assert_eq!(lower_micros(1), 32);
        assert_eq!(lower_micros(BUCKETS - 1), 1 << 27);
        assert!(Duration::from_micros(lower_micros(BUCKETS - 1)) > Duration::from_secs(120));
    }

    #[test]
    fn every_value_lands_in_the_bucket_whose_bounds_hold_it() {
        let mut values: Vec<u64> = (0..5000).collect();
        for shift in 0..64 {
            let p = 1u64 << shift;
            values.extend([p - 1, p, p + 1, p.saturating_mul(3) / 2]);
        }
        values.push(u64::MAX);
        for us in values {
            let i = bucket_of_micros(us);
            assert!(i < BUCKETS);
            assert!(lower_micros(i) <= us && (us < upper_micros(i) || i == BUCKETS - 1), "{us} µs in bucket {i}");
        }
        assert_eq!(bucket_of(Duration::MAX), BUCKETS - 1);
        assert_eq!(bucket_of(Duration::ZERO), 0);
    }

    #[test]
    fn quantile_edges() {
        let mut b = [0u64; BUCKETS];
        assert_eq!(quantile(&b, 0.5), None);
        b[bucket_of(Duration::from_millis(1))] = 10;
        let q = quantile(&b, 0.99).unwrap();
        assert!(q.abs_diff(Duration::from_millis(1)) * 16 <= Duration::from_millis(1), "{q:?}");
        assert_eq!(quantile(&b, 0.0), quantile(&b, 1.0));
        assert_eq!(quantile(&b, f64::NAN), None);
        assert_eq!(quantile(&b, 1.5), None);
        b[BUCKETS - 1] = 1000;
        assert_eq!(quantile(&b, 0.99), Some(Duration::from_micros(1 << 27)));
    }
}
