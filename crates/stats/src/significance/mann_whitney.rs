//! The Mann-Whitney U test on two histograms of the same buckets, without
//! expanding the counts: every value in a bucket is tied with the others there.

use super::{clamp_p, normal_sf};

/// One-sided Mann-Whitney U test: the p-value for "the canary's values tend to be
/// larger than the baseline's", from counts per histogram bucket (the same buckets
/// in ascending order on both sides; a shorter slice has 0 in its missing
/// buckets). Values in one bucket are ties (midranks); the p-value is the normal
/// approximation with tie and continuity correction — R's `wilcox.test(canary,
/// baseline, alternative = "greater", exact = FALSE, correct = TRUE)`:
///
/// `U = #{canary > baseline} + ½·#{canary = baseline}` over all pairs,
/// `z = (U − n1·n2/2 − ½) / σ`, `σ² = n1·n2/12 · ((N + 1) − Σ(t³ − t)/(N(N − 1)))`
/// with `t` the values per bucket. An empty side, or every value in one bucket
/// (no order at all), answers `1.0`. O(buckets), exact integer sums, no overflow.
pub fn mann_whitney_greater(canary: &[u64], baseline: &[u64]) -> f64 {
    let n1: u128 = canary.iter().map(|&v| u128::from(v)).sum();
    let n2: u128 = baseline.iter().map(|&v| u128::from(v)).sum();
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let n = n1 + n2;
    let count = |side: &[u64], i: usize| side.get(i).map_or(0, |&v| u128::from(v));
    // 2(U − n1·n2/2) = Σ over buckets of canary × (baseline below − baseline
    // above): computed directly, so no large U minus large mean; in exact integers
    // while they fit (every realistic histogram: identical sides give exactly 0),
    // in f64 beyond.
    let mut shift_exact = Some(0_i128);
    let mut shift = 0.0_f64;
    // N³ − Σt³ = Σ t(N − t)(N + t): the tie correction's numerator, with every
    // term ≥ 0 and N − t exact, so all values in one bucket give exactly 0.
    let mut untied = 0.0_f64;
    let mut below: u128 = 0;
    for i in 0..canary.len().max(baseline.len()) {
        let (m, b) = (count(canary, i), count(baseline, i));
        let above = n2 - below - b;
        if m > 0 {
            // Both ≤ n2 < 2¹²⁷: the difference is exact in i128.
            let diff = below as i128 - above as i128;
            shift += m as f64 * diff as f64;
            shift_exact = shift_exact.and_then(|s| i128::try_from(m).ok()?.checked_mul(diff)?.checked_add(s));
        }
        let t = m + b;
        if t > 0 {
            untied += t as f64 * (n - t) as f64 * (n + t) as f64;
        }
        below += b;
    }
    if untied <= 0.0 {
        return 1.0;
    }
    let (n1, n2, n) = (n1 as f64, n2 as f64, n as f64);
    // σ² = n1·n2/12 · ((N+1) − Σ(t³ − t)/(N(N−1))) = n1·n2/12 · (N³ − Σt³)/(N(N−1)).
    let variance = n1 * n2 / 12.0 * untied / (n * (n - 1.0));
    let shift = shift_exact.map_or(shift, |s| s as f64);
    let z = (shift / 2.0 - 0.5) / variance.sqrt();
    clamp_p(normal_sf(z))
}
