//! Significance tests as small pure functions (placeholder until the statistics land).

/// One-sided p-value that the canary's error proportion is higher.
pub fn error_increase_p(_canary_errors: u64, _canary_n: u64, _base_errors: u64, _base_n: u64) -> f64 {
    1.0
}

/// One-sided p-value that the canary's latencies tend to be larger.
pub fn mann_whitney_greater(_canary: &[u64], _baseline: &[u64]) -> f64 {
    1.0
}
