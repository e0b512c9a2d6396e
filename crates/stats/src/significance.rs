//! The significance tests a rollout judges the canary with (SPEC §9), as small pure
//! functions on counts: f64 math, no dependencies, no panics. Every p-value is in
//! `[0, 1]` and never NaN, whatever the input (zeros, empty sides, errors above the
//! request count, counts up to `u64::MAX`); "no data" answers `1.0` (not
//! significant).
//!
//! - Errors: [`error_increase_p`] — one-sided, "the canary's error proportion is
//!   greater than the baseline's" — by Fisher's exact test for small tables and the
//!   pooled two-proportion z-test for large ones (the rule is on
//!   [`error_increase_p`]). Both are exposed: [`fisher_exact_greater`],
//!   [`two_proportion_greater`].
//! - Latency: [`mann_whitney_greater`] — Mann-Whitney U on two histograms with the
//!   same buckets, ties by midranks, normal approximation with tie and continuity
//!   correction, O(buckets).
//! - [`normal_sf`]: the standard normal upper tail (W. J. Cody's erfc).
//!
//! The rollout's verdict also needs the effect size (SPEC §9: the error rate must
//! exceed the baseline's by `max_error_increase`, the p99 by `max_latency_ratio`);
//! these functions only answer "is it significant".

mod fisher;
mod mann_whitney;
mod normal;

pub use fisher::fisher_exact_greater;
pub use mann_whitney::mann_whitney_greater;
pub use normal::{erfc, normal_sf};

/// [`error_increase_p`] uses Fisher's exact test when the table's total is at
/// most this (the exact sum then has at most ~1,000 terms, and the exact test is
/// the honest one for the few hundred requests a step starts judging with)...
pub const EXACT_MAX_TOTAL: u64 = 2000;

/// ... or when any expected cell count (row total × column total / total) is
/// below this: Cochran's rule for when the normal approximation is unreliable.
/// The exact sum stays cheap there at any total, as the hypergeometric variance
/// is below the smallest expected cell.
pub const EXACT_MIN_EXPECTED: f64 = 5.0;

/// One-sided p-value for "the canary's error proportion is greater than the
/// baseline's", from `canary_errors` of `canary_n` requests against `base_errors`
/// of `base_n`. Errors above the request count are taken as the request count.
///
/// Switch-over rule: the 2×2 table `[[canary_errors, canary_ok], [base_errors,
/// base_ok]]` is judged by [`fisher_exact_greater`] when its total is at most
/// [`EXACT_MAX_TOTAL`] or any expected cell is below [`EXACT_MIN_EXPECTED`], else
/// by the pooled z-test [`two_proportion_greater`]. An empty side answers `1.0`.
pub fn error_increase_p(canary_errors: u64, canary_n: u64, base_errors: u64, base_n: u64) -> f64 {
    if canary_n == 0 || base_n == 0 {
        return 1.0;
    }
    let (a, c) = (canary_errors.min(canary_n), base_errors.min(base_n));
    let (b, d) = (canary_n - a, base_n - c);
    let total = canary_n as f64 + base_n as f64;
    let (r1, r2) = (canary_n as f64, base_n as f64);
    let (c1, c2) = (a as f64 + c as f64, b as f64 + d as f64);
    let min_expected = r1.min(r2) * c1.min(c2) / total;
    if total <= EXACT_MAX_TOTAL as f64 || min_expected < EXACT_MIN_EXPECTED {
        fisher_exact_greater(a, b, c, d)
    } else {
        two_proportion_greater(a, canary_n, c, base_n)
    }
}

/// One-sided pooled two-proportion z-test: p-value for "`x1/n1` is greater than
/// `x2/n2`", with `z = (p1 − p2) / sqrt(p̂ (1 − p̂) (1/n1 + 1/n2))`, `p̂` the pooled
/// proportion, and no continuity correction (small tables belong to Fisher, see
/// [`error_increase_p`]). `x` above `n` is taken as `n`; an empty side, or no
/// variance at all (no errors or only errors on both sides), answers `1.0`.
pub fn two_proportion_greater(x1: u64, n1: u64, x2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (x1, x2) = (x1.min(n1), x2.min(n2));
    pooled_z_greater(x1 as f64, (n1 - x1) as f64, x2 as f64, (n2 - x2) as f64)
}

/// The pooled z-test on counts: `x1` errors and `ok1` successes against `x2` and
/// `ok2` (the successes given, not derived, so that 1 − p̂ stays exact near
/// p̂ = 1). An empty side or no variance answers `1.0`.
fn pooled_z_greater(x1: f64, ok1: f64, x2: f64, ok2: f64) -> f64 {
    let (n1, n2) = (x1 + ok1, x2 + ok2);
    if n1 <= 0.0 || n2 <= 0.0 {
        return 1.0;
    }
    let total = n1 + n2;
    let variance = (x1 + x2) / total * ((ok1 + ok2) / total) * (1.0 / n1 + 1.0 / n2);
    if variance.is_nan() || variance <= 0.0 {
        return 1.0;
    }
    let z = (x1 / n1 - x2 / n2) / variance.sqrt();
    clamp_p(normal_sf(z))
}

/// A p-value forced into `[0, 1]`, NaN (which no path should make) as `1.0`.
fn clamp_p(p: f64) -> f64 {
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}
