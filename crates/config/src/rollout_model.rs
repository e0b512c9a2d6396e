//! `[service.rollout]`: the settings of a progressive rollout (SPEC §9), with the
//! defaults SPEC §2 shows. The start call overrides any of them.

use crate::Weight;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a step does when `max_step_duration` passes without a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInconclusive {
    /// Phase `paused`: a person decides.
    Pause,
    /// Back to the pre-rollout traffic.
    Abort,
    /// Advance anyway (said in history).
    Continue,
}

/// One smoke request sent to every canary backend before the first step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smoke {
    /// Request path, starting with `/`.
    pub path: String,
    /// The status that counts as success.
    pub status: u16,
}

/// `[service.rollout.analysis]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Requests the canary (and, for comparisons, the baseline) needs in the window.
    pub min_requests: u64,
    /// Largest 5xx share of the canary, 0–1.
    pub max_error_rate: f64,
    /// Absolute p99 limit of the canary (time to first byte).
    #[serde(with = "crate::rollout_model::opt_duration_text")]
    pub max_p99: Option<Duration>,
    /// How far the canary's error rate may exceed the baseline's, when significant.
    pub max_error_increase: f64,
    /// How many times the baseline's p99 the canary's may be, when significant.
    pub max_latency_ratio: f64,
    /// Consecutive canary 5xx that roll back at once; 0 = off.
    pub fast_fail_errors: u32,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            min_requests: 300,
            max_error_rate: 0.01,
            max_p99: None,
            max_error_increase: 0.005,
            max_latency_ratio: 1.25,
            fast_fail_errors: 20,
        }
    }
}

/// `[service.rollout]`, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSettings {
    /// Canary weights, ascending, the last one 100.
    pub steps: Vec<Weight>,
    /// Least time on a step before it may advance.
    #[serde(with = "crate::rollout_model::duration_text")]
    pub step_interval: Duration,
    /// How often the analysis runs.
    #[serde(with = "crate::rollout_model::duration_text")]
    pub interval: Duration,
    /// The first part of each step that is not judged.
    #[serde(with = "crate::rollout_model::duration_text")]
    pub warmup: Duration,
    /// A step without a verdict by then → `on_inconclusive`.
    #[serde(with = "crate::rollout_model::duration_text")]
    pub max_step_duration: Duration,
    /// What happens then.
    pub on_inconclusive: OnInconclusive,
    /// Consecutive failing analyses that roll back.
    pub failure_limit: u32,
    /// Requests sent to every canary backend before the first step.
    pub smoke: Vec<Smoke>,
    /// The limits the analysis judges by.
    pub analysis: Analysis,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        RolloutSettings {
            steps: [1, 5, 25, 50, 100].into_iter().map(|w| Weight(w * 100)).collect(),
            step_interval: Duration::from_secs(60),
            interval: Duration::from_secs(5),
            warmup: Duration::ZERO,
            max_step_duration: Duration::from_secs(600),
            on_inconclusive: OnInconclusive::Pause,
            failure_limit: 2,
            smoke: Vec::new(),
            analysis: Analysis::default(),
        }
    }
}

/// Writes a duration the way the file does: the largest unit that divides it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Serde for durations as `"5s"` text.
pub(crate) mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for optional durations as `"5s"` text or null.
pub(crate) mod opt_duration_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| crate::parse_duration(&t).map_err(serde::de::Error::custom)).transpose()
    }
}
