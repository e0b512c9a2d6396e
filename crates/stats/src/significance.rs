//! Significance tests as small pure functions (filled in by the rollout work).
