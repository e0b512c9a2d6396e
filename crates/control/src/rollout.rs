//! The rollout object (SPEC §9): what the state file keeps of a progressive
//! rollout and what the API shows, in one type. Figures of the latest analysis
//! live here too; the clock of the current step does not (a restart starts the
//! step's clock and window afresh, so it never advances a step).

use serde::{Deserialize, Serialize};
use switchyard_config::{RolloutSettings, Traffic, Weight};

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Steps advance as the analysis passes.
    Progressing,
    /// Weights frozen; analysis and automatic rollback keep running.
    Paused,
    /// The canary has 100 %.
    Promoted,
    /// The analysis failed; traffic is back where it was before the rollout.
    RolledBack,
    /// An operator stopped it; traffic is back where it was before the rollout.
    Aborted,
    /// A manual change or a `[traffic]` reload took over.
    Cancelled,
}

impl Phase {
    /// Progressing or paused: the rollout still holds the service.
    pub fn is_running(self) -> bool {
        matches!(self, Phase::Progressing | Phase::Paused)
    }

    /// As in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Progressing => "progressing",
            Phase::Paused => "paused",
            Phase::Promoted => "promoted",
            Phase::RolledBack => "rolled_back",
            Phase::Aborted => "aborted",
            Phase::Cancelled => "cancelled",
        }
    }
}

/// One side's figures over the analysis window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideView {
    /// Requests answered.
    pub requests: u64,
    /// 5xx answers.
    pub errors: u64,
    /// errors / requests (0 without requests).
    pub error_rate: f64,
    /// Median time to first byte, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile time to first byte, ms.
    pub p99_ms: Option<f64>,
}

/// One check of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckView {
    /// `error_rate`, `p99`, `error_increase`, `latency_ratio`.
    pub name: String,
    /// The measured value (fraction, ms or ratio), when there is one.
    pub value: Option<f64>,
    /// The limit it is held to.
    pub limit: f64,
    /// One-sided p-value of the comparison with the baseline, for comparisons.
    pub p: Option<f64>,
    /// `pass`, `fail`, `insufficient` or `skipped`.
    pub result: String,
}

/// The latest analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisView {
    /// `insufficient`, `pass` or `fail`.
    pub verdict: String,
    /// Seconds of the window judged.
    pub window_s: u64,
    /// Failing analyses in a row.
    pub consecutive_failures: u32,
    /// The canary's figures.
    pub canary: SideView,
    /// The baseline's figures.
    pub baseline: SideView,
    /// Each check.
    pub checks: Vec<CheckView>,
}

impl Default for AnalysisView {
    fn default() -> Self {
        AnalysisView {
            verdict: "insufficient".into(),
            window_s: 0,
            consecutive_failures: 0,
            canary: SideView::default(),
            baseline: SideView::default(),
            checks: Vec::new(),
        }
    }
}

/// A progressive rollout, as persisted and as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// `SERVICE-VERSION` of its first step.
    pub id: String,
    /// The canary pool.
    pub pool: String,
    /// The pool traffic moves away from.
    pub baseline: String,
    /// Where it is.
    pub phase: Phase,
    /// Why it is in its phase.
    pub message: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, once it ended.
    pub ended_at: Option<String>,
    /// Who started it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// Traffic before the rollout (where rollback and abort return).
    pub from: Traffic,
    /// Always `local`: judged on the traffic this proxy sees.
    pub scope: String,
    /// The canary weight of each step (those at or below the canary's weight at
    /// the start skipped).
    pub steps: Vec<Weight>,
    /// Index of the current step.
    pub step: usize,
    /// The canary's weight now.
    pub weight: Weight,
    /// RFC 3339: when the current step's clock started.
    pub step_started_at: String,
    /// RFC 3339: the earliest the next step may come (null unless progressing).
    pub next_step_at: Option<String>,
    /// The settings it runs with.
    pub settings: RolloutSettings,
    /// The latest analysis.
    pub analysis: AnalysisView,
}
