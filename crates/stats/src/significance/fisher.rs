//! Fisher's exact test, one-sided, on a 2×2 table. The hypergeometric
//! probabilities are computed in log space by Loader's saddle-point form (C.
//! Loader, "Fast and accurate computation of binomial probabilities", 2000; the
//! method of R's `dbinom`/`dhyper`): each log-factorial is split into Stirling's
//! main part and its small error term, and the main parts cancel analytically
//! (the `bd0` deviance) instead of numerically. A plain log-gamma difference
//! would lose ~1e-16 × ln(n!) in absolute terms: already 3e-3 at n = 1e12.

use super::{clamp_p, pooled_z_greater};

/// Above this hypergeometric variance the exact sum (~9 standard deviations of
/// terms) stops being cheap, and a table that large has no small-count issue:
/// [`fisher_exact_greater`] answers with the pooled z-test instead.
const MAX_EXACT_VARIANCE: f64 = 1e8;
/// A hard bound on the terms summed, far above what `MAX_EXACT_VARIANCE` needs.
const MAX_TERMS: usize = 10_000_000;
/// ln √(2π).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
/// ln 2π.
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// One-sided Fisher's exact test on the table `[[a, b], [c, d]]`: the p-value
/// for "the first row's proportion `a/(a+b)` is greater than the second row's
/// `c/(c+d)`", i.e. P(X ≥ a) for X hypergeometric with the table's margins (R's
/// `fisher.test(matrix(c(a, c, b, d), 2), alternative = "greater")`). A table
/// with an empty row or column answers `1.0`. Tables whose hypergeometric
/// variance exceeds 1e8 (far beyond "small counts") are answered by the pooled
/// z-test, as the exact sum would cost ~1e5 terms and more.
pub fn fisher_exact_greater(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let [a, b, c, d] = [a, b, c, d].map(u128::from);
    let (r1, r2, c1, c2) = (a + b, c + d, a + c, b + d);
    // The support of X starts at max(0, c1 − r2): from there P(X ≥ a) = 1. This
    // also covers every table with an empty row or column.
    if a <= c1.saturating_sub(r2) {
        return 1.0;
    }
    let n = (r1 + r2) as f64;
    let mean = r1 as f64 * c1 as f64 / n;
    let variance = mean * (r2 as f64 / n) * (c2 as f64 / (n - 1.0));
    if variance > MAX_EXACT_VARIANCE {
        return pooled_z_greater(a as f64, b as f64, c as f64, d as f64);
    }
    // Sum away from the mode, where the terms fall: the upper tail itself when a
    // is above the mean, else 1 − the lower tail P(X ≤ a − 1) (then p ≥ ~0.5,
    // so the subtraction loses nothing that matters).
    let p = if a as f64 > mean {
        ln_hypergeometric(a, b, c, d).exp() * tail_sum([a, b, c, d], true)
    } else {
        // a > c1 − r2 above, so a ≥ 1 and d = r2 − c1 + a ≥ 1.
        let below = [a - 1, b + 1, c + 1, d - 1];
        let [a, b, c, d] = below;
        1.0 - ln_hypergeometric(a, b, c, d).exp() * tail_sum(below, false)
    };
    clamp_p(p)
}

/// Σ P(X = x)/P(X = start) over x from the table `start` upwards (`up`) or
/// downwards to the end of the support, by the ratio of successive terms. Once
/// the terms fall they fall ever faster (the distribution is log-concave), so the
/// rest after a term t with ratio q < 1 is below t·q/(1 − q): the sum stops when
/// that is negligible.
fn tail_sum(start: [u128; 4], up: bool) -> f64 {
    let [mut a, mut b, mut c, mut d] = start.map(|v| v as f64);
    let (mut term, mut sum) = (1.0_f64, 1.0_f64);
    for _ in 0..MAX_TERMS {
        let (num, den) = if up { (b * c, (a + 1.0) * (d + 1.0)) } else { (a * d, (b + 1.0) * (c + 1.0)) };
        if num <= 0.0 {
            break; // the end of the support
        }
        let q = num / den;
        term *= q;
        sum += term;
        let step = if up { 1.0 } else { -1.0 };
        (a, b, c, d) = (a + step, b - step, c - step, d + step);
        if q < 1.0 && term * q <= sum * 1e-17 * (1.0 - q) {
            break;
        }
    }
    sum
}

/// ln P(X = a) for the table `[[a, b], [c, d]]` with its margins fixed: with
/// p = (a + c)/n, P(X = a) = B(a; a+b, p)·B(c; c+d, p) / B(a+c; n, p), B the
/// binomial probability (the powers of p cancel; this p keeps every factor near
/// its mode).
fn ln_hypergeometric(a: u128, b: u128, c: u128, d: u128) -> f64 {
    let n = (a + b + c + d) as f64;
    if n == 0.0 {
        return 0.0;
    }
    let (p, q) = ((a + c) as f64 / n, (b + d) as f64 / n);
    let [a, b, c, d] = [a, b, c, d].map(|v| v as f64);
    ln_binomial_pmf(a, b, p, q) + ln_binomial_pmf(c, d, p, q) - ln_binomial_pmf(a + c, b + d, p, q)
}

/// ln B(x; x + y, p): x successes and y failures, success probability p,
/// q = 1 − p given separately (exact near p = 1). Loader's form, as R's
/// `dbinom_raw`.
fn ln_binomial_pmf(x: f64, y: f64, p: f64, q: f64) -> f64 {
    let n = x + y;
    if n == 0.0 {
        return 0.0;
    }
    if x == 0.0 {
        // n·ln q, without ln's cancellation for q near 1.
        return if p < 0.1 { -bd0(n, n * q) - n * p } else { n * q.ln() };
    }
    if y == 0.0 {
        return if q < 0.1 { -bd0(n, n * p) - n * q } else { n * p.ln() };
    }
    let lc = stirlerr(n) - stirlerr(x) - stirlerr(y) - bd0(x, n * p) - bd0(y, n * q);
    // ln(2π·x·y/n), the √ of the normal density's scale.
    let lf = LN_2PI + x.ln() + y.ln() - n.ln();
    lc - 0.5 * lf
}

/// Stirling's error term ln(n!) − ln(√(2πn)·(n/e)ⁿ) for a whole n ≥ 1.
fn stirlerr(n: f64) -> f64 {
    if n <= 15.0 {
        // n! is exact in f64 up to 15! (< 2⁵³), so ln(n!) is as good as ln.
        let mut factorial = 1.0_f64;
        let mut k = 2.0;
        while k <= n {
            factorial *= k;
            k += 1.0;
        }
        return factorial.ln() - (n + 0.5) * n.ln() + n - LN_SQRT_2PI;
    }
    // The Stirling series 1/12n − 1/360n³ + 1/1260n⁵ − 1/1680n⁷ + 1/1188n⁹; the
    // next term is below 2e-16 at n = 16.
    const S: [f64; 5] = [1.0 / 12.0, 1.0 / 360.0, 1.0 / 1260.0, 1.0 / 1680.0, 1.0 / 1188.0];
    let nn = n * n;
    (S[0] - (S[1] - (S[2] - (S[3] - S[4] / nn) / nn) / nn) / nn) / n
}

/// The deviance term x·ln(x/m) + m − x, by its series when x is near m (where
/// the plain form cancels).
fn bd0(x: f64, m: f64) -> f64 {
    if (x - m).abs() < 0.1 * (x + m) {
        let mut v = (x - m) / (x + m);
        let mut s = (x - m) * v;
        let mut ej = 2.0 * x * v;
        v *= v;
        for j in 1..1000 {
            ej *= v;
            let next = s + ej / f64::from(2 * j + 1);
            if next == s {
                break;
            }
            s = next;
        }
        s
    } else {
        x * (x / m).ln() + m - x
    }
}
