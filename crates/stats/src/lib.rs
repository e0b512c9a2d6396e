//! switchyard-stats owns the live per-pool figures that can be read back (the
//! `metrics` facade cannot): counters and a fine latency histogram that the request
//! path bumps with atomic adds, a ring of one-second samples covering 15 minutes
//! so that any window is the difference of two samples, and the pure significance
//! tests (Fisher's exact test, two proportions, Mann-Whitney U on histogram
//! buckets) a rollout judges the canary with.
//!
//! Depends on nothing; proxy, control and admin depend on it.

pub mod significance;
