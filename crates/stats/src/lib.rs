//! switchyard-stats owns the live per-pool figures that can be read back (the
//! `metrics` facade cannot): counters and a fine latency histogram that the request
//! path bumps with atomic adds, a ring of one-second samples covering 15 minutes
//! so that any window is the difference of two samples, and the pure significance
//! tests (Fisher's exact test, two proportions, Mann-Whitney U on histogram
//! buckets) a rollout judges the canary with.
//!
//! Depends on nothing; proxy, control and admin depend on it.

mod counters;
pub mod histogram;
mod live;
mod ring;
pub mod significance;
mod window;

pub use counters::{Counters, Snapshot, class_of};
pub use histogram::BUCKETS;
pub use live::Live;
pub use ring::{RING_SECONDS, Ring};
pub use window::{Point, Window};

#[cfg(test)]
mod tests;
