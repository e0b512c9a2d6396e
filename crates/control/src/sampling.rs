//! Reads a pool's live stats for the rollout analysis (the one place that knows
//! the stats' shape).

use crate::judge::Sample;
use switchyard_proxy::PoolStats;

/// The pool's figures for the samples after tick `from` up to tick `to`.
pub(crate) fn sample(_stats: &PoolStats, _from: u64, _to: u64) -> Sample {
    Sample::default()
}

/// The longest run of consecutive 5xx since the last call.
pub(crate) fn error_run(_stats: &PoolStats) -> u64 {
    0
}
