//! The significance tests against known values (references computed with mpmath at
//! 40 digits, or exactly by hand as stated), against brute-force implementations
//! on small inputs, and the properties a rollout relies on.

// The references are mpmath's 17 significant digits, as printed.
#![allow(clippy::excessive_precision)]

use proptest::prelude::*;
use switchyard_stats::significance::{
    EXACT_MAX_TOTAL, erfc, error_increase_p, fisher_exact_greater, mann_whitney_greater, normal_sf,
    two_proportion_greater,
};

fn assert_rel(got: f64, want: f64, tol: f64) {
    let err = ((got - want) / want).abs();
    assert!(err <= tol, "got {got:e}, want {want:e} (relative error {err:e} > {tol:e})");
}

#[test]
fn normal_sf_matches_reference_values() {
    assert_eq!(normal_sf(0.0), 0.5);
    // (z, P(Z > z)) from mpmath: erfc(z/√2)/2.
    let table = [
        (0.3, 0.382_088_577_811_047_37),
        (1.0, 0.158_655_253_931_457_05),
        (1.96, 0.024_997_895_148_220_436),
        (2.5, 0.006_209_665_325_776_135_2),
        (3.0, 0.001_349_898_031_630_094_5),
        (4.0, 3.167_124_183_311_992_1e-5),
        (5.0, 2.866_515_718_791_939_1e-7),
        (6.0, 9.865_876_450_376_981_4e-10),
        (7.0, 1.279_812_543_885_835e-12),
        (8.0, 6.220_960_574_271_784_1e-16),
        (10.0, 7.619_853_024_160_526_1e-24),
        (20.0, 2.753_624_118_606_233_7e-89),
        (30.0, 4.906_713_927_148_187_1e-198),
        (-1.0, 0.841_344_746_068_542_95),
        (-3.0, 0.998_650_101_968_369_91),
    ];
    for (z, want) in table {
        // The deep tails keep their relative accuracy (z/√2 itself is rounded,
        // which costs ~z²·1e-16).
        assert_rel(normal_sf(z), want, 1e-12);
    }
    assert_eq!(normal_sf(f64::INFINITY), 0.0);
    assert_eq!(normal_sf(f64::NEG_INFINITY), 1.0);
    assert_eq!(normal_sf(40.0), 0.0, "underflows to 0, not to garbage");
    assert!(normal_sf(f64::NAN).is_nan());
}

#[test]
fn erfc_matches_reference_values_in_all_three_ranges() {
    // Cody's three ranges: |x| ≤ 0.46875, up to 4, beyond 4 (mpmath values).
    let table = [
        (0.1, 0.887_537_083_981_715_1),
        (0.468_75, 0.507_386_526_782_062_01),
        (0.5, 0.479_500_122_186_953_46),
        (1.0, 0.157_299_207_050_285_13),
        (2.0, 0.004_677_734_981_047_265_8),
        (3.9, 3.479_224_859_723_176_7e-8),
        (4.0, 1.541_725_790_028_001_9e-8),
        (4.1, 6.700_027_654_084_918_4e-9),
        (6.0, 2.151_973_671_249_891_3e-17),
        (10.0, 2.088_487_583_762_544_8e-45),
        (26.0, 5.663_192_408_856_142_8e-296),
    ];
    for (x, want) in table {
        assert_rel(erfc(x), want, 2e-15);
        assert_rel(erfc(-x), 2.0 - want, 2e-15);
    }
}

#[test]
fn fisher_tea_tasting() {
    // Fisher's lady tasting tea: [[3, 1], [1, 3]], one-sided p = P(X ≥ 3) =
    // (C(4,3)·C(4,1) + C(4,4)·C(4,0)) / C(8,4) = (16 + 1)/70.
    assert_rel(fisher_exact_greater(3, 1, 1, 3), 17.0 / 70.0, 1e-14);
}

#[test]
fn fisher_matches_r_on_the_second_textbook_table() {
    // R: fisher.test(matrix(c(1, 11, 9, 3), 2), alternative = "less") gives
    // p = 0.001379 for [[1, 9], [11, 3]]: P(X ≤ 1) = (C(10,0)·C(14,12) +
    // C(10,1)·C(14,11)) / C(24,12) = (91 + 3640)/2704156. "less" on the table is
    // "greater" with the columns swapped: [[9, 1], [3, 11]].
    let less = fisher_exact_greater(9, 1, 3, 11);
    assert_rel(less, 3731.0 / 2_704_156.0, 1e-13);
    assert!((less - 0.001379).abs() < 1e-6, "R prints 0.001379(7)");
    // alternative = "greater" on [[1, 9], [11, 3]]: 1 − P(X = 0) = 1 − 91/2704156.
    assert_rel(fisher_exact_greater(1, 9, 11, 3), 1.0 - 91.0 / 2_704_156.0, 1e-14);
}

#[test]
fn fisher_stays_exact_at_a_trillion_requests() {
    // 5 errors in all among 2e12 requests split evenly, all 5 on the canary: P(X ≥
    // 5) = Π_{i<5} (1e12 − i)/(2e12 − i) = 0.03124999999984375 (exact fraction).
    // A plain log-factorial difference would be off by ~0.3 % here.
    let n = 1_000_000_000_000;
    assert_rel(fisher_exact_greater(5, n - 5, 0, n), 0.031_249_999_999_843_75, 1e-12);
    assert_rel(error_increase_p(5, n, 0, n), 0.031_249_999_999_843_75, 1e-12);
}

#[test]
fn fisher_exact_sum_on_a_large_table_agrees_with_the_normal_approximation() {
    // Variance 5e7 (N/16): still the exact sum (~1e5 terms), which at this size
    // must sit next to the z-test: 0.50005 against 0.49995 of 4e8 requests each,
    // z = 1e-4/√(0.25·2/4e8) = 2.828, p ≈ 2.3e-3.
    let (exact, z) = (
        fisher_exact_greater(200_020_000, 199_980_000, 199_980_000, 200_020_000),
        two_proportion_greater(200_020_000, 400_000_000, 199_980_000, 400_000_000),
    );
    assert_rel(z, 2.338_867_490_523_632e-3, 1e-12);
    assert_rel(exact, z, 1e-2);
    // Beyond variance 1e8 the answer is the z-test's.
    let n = 1_000_000_000_000;
    assert_eq!(fisher_exact_greater(n, n, n, n), two_proportion_greater(n, 2 * n, n, 2 * n));
}

#[test]
fn two_proportions_hand_computed() {
    // 60/1000 vs 30/1000: pooled p̂ = 90/2000 = 0.045, se = √(0.045·0.955·2/1000)
    // = 0.0092709..., z = 0.03/se = 3.2359240084528678, p = P(Z > z) =
    // 6.062482930771088e-4 (mpmath).
    assert_rel(two_proportion_greater(60, 1000, 30, 1000), 6.062_482_930_771_088e-4, 1e-12);
    assert_eq!(two_proportion_greater(30, 1000, 30, 1000), 0.5);
    assert_eq!(two_proportion_greater(0, 1000, 0, 1000), 1.0, "no errors at all");
    assert_eq!(two_proportion_greater(1000, 1000, 1000, 1000), 1.0, "only errors");
    assert_eq!(two_proportion_greater(5, 0, 1, 10), 1.0, "empty side");
    assert_eq!(
        two_proportion_greater(2000, 1000, 60, 1000),
        two_proportion_greater(1000, 1000, 60, 1000),
        "errors above the count are the count"
    );
}

#[test]
fn error_increase_p_switches_from_fisher_to_the_z_test() {
    // Small tables: Fisher's exact test, whatever the expected cells.
    assert_eq!(error_increase_p(60, 1000, 30, 1000), fisher_exact_greater(60, 940, 30, 970));
    // Large tables with every expected cell ≥ 5: the z-test.
    const { assert!(12_000 > EXACT_MAX_TOTAL) };
    assert_eq!(error_increase_p(360, 6000, 300, 6000), two_proportion_greater(360, 6000, 300, 6000));
    // Large but an expected cell below 5 (3 errors among 12,000): exact again.
    assert_eq!(error_increase_p(3, 6000, 0, 6000), fisher_exact_greater(3, 5997, 0, 6000));
    assert_eq!(error_increase_p(0, 0, 5, 100), 1.0);
    assert_eq!(error_increase_p(5, 100, 0, 0), 1.0);
}

#[test]
fn mann_whitney_textbook_example_without_ties() {
    // Canary {4, 7, 8, 9, 10} against baseline {1, 2, 3, 5, 6}, each value its own
    // bucket. By hand: U = #{canary > baseline} = 3 + 5 + 5 + 5 + 5 = 23 (R's W);
    // μ = 12.5, σ² = 5·5·11/12 = 22.9167, z = (23 − 12.5 − 0.5)/σ = 2.0889,
    // p = 0.018356928181352 (R's wilcox.test(..., alternative = "greater",
    // exact = FALSE) formula, mpmath; the exact p is 4/252 = 0.01587).
    let canary = [0, 0, 0, 1, 0, 0, 1, 1, 1, 1];
    let baseline = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0];
    assert_rel(mann_whitney_greater(&canary, &baseline), 0.018_356_928_181_352_05, 1e-12);
}

#[test]
fn mann_whitney_with_ties_in_buckets() {
    // Canary [0, 1, 2, 3] against baseline [3, 2, 1, 0]. By hand: bucket 1: 1 ×
    // (3 below + 2 tied / 2) = 4; bucket 2: 2 × (5 + 1/2) = 11; bucket 3: 3 × 6 =
    // 18; U = 33, μ = 18. Ties t = 3, 3, 3, 3: Σ(t³ − t) = 96, N = 12, σ² = 36/12 ×
    // (13 − 96/132) = 36.8182, z = 14.5/σ = 2.389664, p = 0.0084318974335296
    // (mpmath).
    assert_rel(mann_whitney_greater(&[0, 1, 2, 3], &[3, 2, 1, 0]), 0.008_431_897_433_529_6, 1e-12);
    // Reversed, the canary is the faster one: not significant.
    assert!(mann_whitney_greater(&[3, 2, 1, 0], &[0, 1, 2, 3]) > 0.99);
}

#[test]
fn mann_whitney_edge_cases() {
    assert_eq!(mann_whitney_greater(&[], &[]), 1.0);
    assert_eq!(mann_whitney_greater(&[0, 0], &[5, 5]), 1.0, "empty canary");
    assert_eq!(mann_whitney_greater(&[5, 5], &[]), 1.0, "empty baseline");
    assert_eq!(mann_whitney_greater(&[0, 7, 0], &[0, 9]), 1.0, "all tied");
    // A shorter slice has zeros in its missing buckets.
    assert_eq!(mann_whitney_greater(&[1, 2, 0, 4], &[3, 2]), mann_whitney_greater(&[1, 2, 0, 4], &[3, 2, 0, 0]));
    let huge = [u64::MAX; 64];
    let p = mann_whitney_greater(&huge, &huge);
    assert!((0.5..=1.0).contains(&p), "{p}");
}

/// The textbook definition on expanded values: ranks with midranks, U from the
/// canary's rank sum, the tie-corrected variance from the tie groups.
fn mann_whitney_by_ranks(canary: &[u64], baseline: &[u64]) -> f64 {
    let expand = |side: &[u64]| -> Vec<usize> {
        side.iter().enumerate().flat_map(|(i, &k)| std::iter::repeat_n(i, k as usize)).collect()
    };
    let (xs, ys) = (expand(canary), expand(baseline));
    let (n1, n2) = (xs.len() as f64, ys.len() as f64);
    let mut all: Vec<usize> = xs.iter().chain(&ys).copied().collect();
    all.sort_unstable();
    let n = all.len() as f64;
    let midrank = |v: usize| {
        let lo = all.partition_point(|&w| w < v) as f64;
        let hi = all.partition_point(|&w| w <= v) as f64;
        (lo + 1.0 + hi) / 2.0
    };
    let r1: f64 = xs.iter().map(|&v| midrank(v)).sum();
    let u = r1 - n1 * (n1 + 1.0) / 2.0;
    let mut ties = 0.0;
    let mut i = 0;
    while i < all.len() {
        let t = all[i..].iter().take_while(|&&w| w == all[i]).count();
        ties += (t * t * t - t) as f64;
        i += t;
    }
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    normal_sf((u - n1 * n2 / 2.0 - 0.5) / variance.sqrt())
}

/// P(X ≥ a) by exact integer binomials (n ≤ 60 keeps every product in u128).
fn fisher_by_binomials(a: u64, b: u64, c: u64, d: u64) -> f64 {
    fn choose(n: u64, k: u64) -> u128 {
        (0..k).fold(1u128, |acc, i| acc * u128::from(n - i) / u128::from(i + 1))
    }
    let (r1, r2, c1) = (a + b, c + d, a + c);
    let tail: u128 = (a..=r1.min(c1)).map(|x| choose(r1, x) * choose(r2, c1 - x)).sum();
    tail as f64 / choose(r1 + r2, c1) as f64
}

proptest! {
    #[test]
    fn fisher_matches_exact_binomials(a in 0u64..16, b in 0u64..16, c in 0u64..16, d in 0u64..16) {
        let want = fisher_by_binomials(a, b, c, d);
        let got = fisher_exact_greater(a, b, c, d);
        prop_assert!((got - want).abs() <= 1e-12 * want.max(1e-300) + 1e-15, "{got} vs {want}");
    }

    #[test]
    fn mann_whitney_matches_ranks(
        canary in prop::collection::vec(0u64..6, 1..8),
        baseline in prop::collection::vec(0u64..6, 1..8),
    ) {
        let want = mann_whitney_by_ranks(&canary, &baseline);
        let got = mann_whitney_greater(&canary, &baseline);
        if want.is_nan() {
            prop_assert_eq!(got, 1.0); // an empty side or all tied
        } else {
            prop_assert!((got - want).abs() <= 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn identical_sides_are_never_significant(n in any::<u64>(), frac in 0.0f64..=1.0, small in 0u64..3000) {
        for n in [n, small] {
            let x = (n as f64 * frac) as u64;
            prop_assert!(error_increase_p(x, n, x, n) >= 0.01);
            prop_assert!(fisher_exact_greater(x, n - x, x, n - x) >= 0.5);
            prop_assert!(two_proportion_greater(x, n, x, n) >= 0.5);
        }
    }

    #[test]
    fn identical_histograms_are_never_significant(
        h in prop::collection::vec(0u64..=1_000_000_000_000, 0..200),
        huge in prop::collection::vec(any::<u64>(), 0..40),
    ) {
        // Up to 1e12 a bucket the sums are exact: U is exactly its mean.
        prop_assert!(mann_whitney_greater(&h, &h) >= 0.5);
        // Beyond i128 the f64 sum may round a hair either way.
        prop_assert!(mann_whitney_greater(&huge, &huge) >= 0.49);
    }

    #[test]
    fn ten_times_the_error_rate_is_significant(
        n1 in 1000u64..=1_000_000_000_000,
        n2 in 1000u64..=1_000_000_000_000,
        per_mille in 1u64..=50,
    ) {
        // Baseline 0.1 %–5 %, canary ten times that, ≥ 1000 requests a side.
        let base = n2 * per_mille / 1000;
        let canary = n1 * per_mille * 10 / 1000;
        let p = error_increase_p(canary, n1, base, n2);
        prop_assert!(p < 0.01, "{canary}/{n1} vs {base}/{n2}: p = {p}");
    }

    #[test]
    fn a_three_times_slower_canary_is_significant(
        shape in prop::collection::vec(0u64..100, 1..=8),
        offset in 0usize..20,
        canary_scale in 1u64..=4,
        base_scale in 1u64..=4,
    ) {
        // Buckets growing by 3^(1/4) each: 3× the latency is 4 buckets up. The
        // baseline spans at most 8 buckets (a 9× spread).
        let total: u64 = shape.iter().sum();
        prop_assume!(total > 0);
        let per_side = 300u64.div_ceil(total);
        let mut baseline = vec![0u64; offset + shape.len() + 4];
        let mut canary = baseline.clone();
        for (i, &k) in shape.iter().enumerate() {
            baseline[offset + i] = k * per_side * base_scale;
            canary[offset + i + 4] = k * per_side * canary_scale;
        }
        let p = mann_whitney_greater(&canary, &baseline);
        prop_assert!(p < 0.01, "p = {p}");
    }

    #[test]
    fn p_values_are_probabilities(
        a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), d in any::<u64>(),
        xs in prop::collection::vec(any::<u64>(), 0..20),
        ys in prop::collection::vec(any::<u64>(), 0..20),
    ) {
        for p in [
            fisher_exact_greater(a, b, c, d),
            fisher_exact_greater(a % 50, b, c % 50, d),
            two_proportion_greater(a, b, c, d),
            error_increase_p(a, b, c, d),
            error_increase_p(a % 50, b % 3000, c % 50, d % 3000),
            mann_whitney_greater(&xs, &ys),
        ] {
            prop_assert!((0.0..=1.0).contains(&p), "{p}");
        }
    }
}
