//! Reads a pool's live stats for the rollout analysis (the one place that knows
//! the stats' shape).

use crate::judge::Sample;
use switchyard_proxy::PoolStats;

/// The pool's figures for the samples after tick `from` up to tick `to`.
pub(crate) fn sample(stats: &PoolStats, from: u64, to: u64) -> Sample {
    let w = stats.window(from, to);
    let ms = |q: f64| w.quantile(q).map(|d| d.as_secs_f64() * 1000.0);
    Sample { requests: w.requests, errors: w.errors, p50_ms: ms(0.5), p99_ms: ms(0.99), buckets: w.buckets().to_vec() }
}

/// Forgets the pool's 5xx runs so far (a new rollout judges only its own).
pub(crate) fn reset_error_run(stats: &PoolStats) {
    stats.reset_error_run();
}

/// The longest run of consecutive 5xx since the last call.
pub(crate) fn error_run(stats: &PoolStats) -> u64 {
    stats.take_max_error_run()
}
