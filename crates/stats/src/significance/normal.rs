//! The standard normal upper tail through erfc, by W. J. Cody's rational
//! Chebyshev approximations ("Rational Chebyshev approximations for the error
//! function", Math. Comp. 23 (1969), as in his SPECFUN routine CALERF): relative
//! error near 1e-16 over the whole range, tails included, until the result
//! underflows (erfc(x) = 0 from x ≈ 26.5, i.e. `normal_sf` from z ≈ 37.5).

// The coefficients keep Cody's published 18 digits, to be checked against the
// source; each literal is the f64 nearest to them.
#![allow(clippy::excessive_precision)]

use std::f64::consts::FRAC_1_SQRT_2;

/// erf(x) = x·A(x²)/B(x²) for |x| ≤ 0.46875.
const A: [f64; 5] = [
    3.161_123_743_870_565_6e0,
    1.138_641_541_510_501_56e2,
    3.774_852_376_853_020_21e2,
    3.209_377_589_138_469_47e3,
    1.857_777_061_846_031_53e-1,
];
const B: [f64; 4] =
    [2.360_129_095_234_412_09e1, 2.440_246_379_344_441_73e2, 1.282_616_526_077_372_28e3, 2.844_236_833_439_170_62e3];
/// erfc(x) = exp(−x²)·C(x)/D(x) for 0.46875 < x ≤ 4.
const C: [f64; 9] = [
    5.641_884_969_886_700_89e-1,
    8.883_149_794_388_375_94e0,
    6.611_919_063_714_162_95e1,
    2.986_351_381_974_001_31e2,
    8.819_522_212_417_690_9e2,
    1.712_047_612_634_070_58e3,
    2.051_078_377_826_071_47e3,
    1.230_339_354_797_997_25e3,
    2.153_115_354_744_038_46e-8,
];
const D: [f64; 8] = [
    1.574_492_611_070_983_47e1,
    1.176_939_508_913_124_99e2,
    5.371_811_018_620_098_58e2,
    1.621_389_574_566_690_19e3,
    3.290_799_235_733_459_63e3,
    4.362_619_090_143_247_16e3,
    3.439_367_674_143_721_64e3,
    1.230_339_354_803_749_42e3,
];
/// erfc(x) = exp(−x²)/x·(1/√π + P(1/x²)/(x²·Q(1/x²))) for x > 4.
const P: [f64; 6] = [
    3.053_266_349_612_323_44e-1,
    3.603_448_999_498_044_39e-1,
    1.257_817_261_112_292_46e-1,
    1.608_378_514_874_227_66e-2,
    6.587_491_615_298_378_03e-4,
    1.631_538_713_730_209_78e-2,
];
const Q: [f64; 5] = [
    2.568_520_192_289_822_42e0,
    1.872_952_849_923_460_47e0,
    5.279_051_029_514_284_12e-1,
    6.051_834_131_244_131_91e-2,
    2.335_204_976_268_691_85e-3,
];
/// 1/√π.
const FRAC_1_SQRT_PI: f64 = 5.641_895_835_477_562_87e-1;
/// From here on erfc(x) underflows to 0.
const X_BIG: f64 = 26.543;

/// The standard normal upper tail P(Z > z) = erfc(z/√2)/2, e.g. `normal_sf(0.0)` is
/// 0.5 and `normal_sf(1.96)` ≈ 0.025. `normal_sf(NaN)` is NaN; the infinities give
/// 0 and 1.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z * FRAC_1_SQRT_2)
}

/// The complementary error function 1 − erf(x), accurate relative to its value
/// (the tails included). NaN gives NaN.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    if y <= 0.468_75 {
        let ysq = y * y;
        let mut num = A[4] * ysq;
        let mut den = ysq;
        for (a, b) in A[..3].iter().zip(&B[..3]) {
            num = (num + a) * ysq;
            den = (den + b) * ysq;
        }
        // Here erf(x) ≤ 0.5, so 1 − erf(x) loses nothing.
        return 1.0 - x * (num + A[3]) / (den + B[3]);
    }
    let upper = if y >= X_BIG {
        0.0
    } else if y <= 4.0 {
        let mut num = C[8] * y;
        let mut den = y;
        for (c, d) in C[..7].iter().zip(&D[..7]) {
            num = (num + c) * y;
            den = (den + d) * y;
        }
        exp_minus_square(y) * (num + C[7]) / (den + D[7])
    } else {
        let ysq = 1.0 / (y * y);
        let mut num = P[5] * ysq;
        let mut den = ysq;
        for (p, q) in P[..4].iter().zip(&Q[..4]) {
            num = (num + p) * ysq;
            den = (den + q) * ysq;
        }
        let r = ysq * (num + P[4]) / (den + Q[4]);
        exp_minus_square(y) * (FRAC_1_SQRT_PI - r) / y
    };
    if x < 0.0 { 2.0 - upper } else { upper }
}

/// exp(−y²) without the rounding error of y² blown up by exp: y² is split into
/// an exactly representable part (y rounded down to 1/16) and a small rest.
fn exp_minus_square(y: f64) -> f64 {
    let head = (y * 16.0).trunc() / 16.0;
    let rest = (y - head) * (y + head);
    (-head * head).exp() * (-rest).exp()
}
