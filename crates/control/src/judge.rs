//! The analysis of one rollout window (SPEC §9): the canary's absolute limits and
//! its comparisons with the baseline, each comparison needing both the effect size
//! and significance. Pure: figures in, verdict and checks out.

use crate::rollout::{AnalysisView, CheckView, SideView};
use switchyard_config::Analysis;
use switchyard_stats::significance::{error_increase_p, mann_whitney_greater};

/// Significance level of both comparisons.
pub(crate) const ALPHA: f64 = 0.01;

/// One pool's figures over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sample {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    /// Latency histogram counts, the same buckets for every pool.
    pub(crate) buckets: Vec<u64>,
}

impl Sample {
    /// A pool's live figures for the samples after tick `from` up to tick `to`.
    pub(crate) fn of(stats: &switchyard_proxy::PoolStats, from: u64, to: u64) -> Sample {
        let w = stats.window(from, to);
        let ms = |q: f64| w.quantile(q).map(|d| d.as_secs_f64() * 1000.0);
        Sample {
            requests: w.requests,
            errors: w.errors,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            buckets: w.buckets().to_vec(),
        }
    }

    pub(crate) fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        // Counts far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        let r = self.errors as f64 / self.requests as f64;
        r
    }

    fn view(&self) -> SideView {
        SideView {
            requests: self.requests,
            errors: self.errors,
            error_rate: self.error_rate(),
            p50_ms: self.p50_ms,
            p99_ms: self.p99_ms,
        }
    }
}

/// The verdict of one analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Insufficient,
    Pass,
    Fail,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Insufficient => "insufficient",
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        }
    }
}

/// Judges a window. `consecutive_failures` is carried into the view as given.
pub(crate) fn judge(a: &Analysis, canary: &Sample, baseline: &Sample, window_s: u64) -> (Verdict, AnalysisView) {
    let enough = canary.requests >= a.min_requests;
    let compare = enough && baseline.requests >= a.min_requests;
    let result = |failed: bool| {
        if !enough {
            "insufficient"
        } else if failed {
            "fail"
        } else {
            "pass"
        }
    };
    let mut checks = Vec::with_capacity(4);

    let rate = canary.error_rate();
    checks.push(CheckView {
        name: "error_rate".into(),
        value: Some(rate),
        limit: a.max_error_rate,
        p: None,
        result: result(rate > a.max_error_rate).into(),
    });
    if let Some(max) = a.max_p99 {
        let limit = max.as_secs_f64() * 1000.0;
        let failed = canary.p99_ms.is_some_and(|p| p > limit);
        checks.push(CheckView {
            name: "p99".into(),
            value: canary.p99_ms,
            limit,
            p: None,
            result: result(failed).into(),
        });
    }

    let increase = rate - baseline.error_rate();
    let (p, res) = if compare {
        let p = error_increase_p(canary.errors, canary.requests, baseline.errors, baseline.requests);
        (Some(p), result(increase > a.max_error_increase && p < ALPHA))
    } else {
        (None, if enough { "skipped" } else { "insufficient" })
    };
    checks.push(CheckView {
        name: "error_increase".into(),
        value: Some(increase),
        limit: a.max_error_increase,
        p,
        result: res.into(),
    });

    let ratio = match (canary.p99_ms, baseline.p99_ms) {
        (Some(c), Some(b)) if b > 0.0 => Some(c / b),
        _ => None,
    };
    let (p, res) = match ratio {
        Some(r) if compare => {
            let p = mann_whitney_greater(&canary.buckets, &baseline.buckets);
            (Some(p), result(r > a.max_latency_ratio && p < ALPHA))
        }
        _ => (None, if enough { "skipped" } else { "insufficient" }),
    };
    checks.push(CheckView {
        name: "latency_ratio".into(),
        value: ratio,
        limit: a.max_latency_ratio,
        p,
        result: res.into(),
    });

    let verdict = if !enough {
        Verdict::Insufficient
    } else if checks.iter().any(|c| c.result == "fail") {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    let view = AnalysisView {
        verdict: verdict.as_str().into(),
        window_s,
        consecutive_failures: 0,
        canary: canary.view(),
        baseline: baseline.view(),
        checks,
    };
    (verdict, view)
}

/// The figures behind a verdict, for history and messages, e.g.
/// `error rate 4.1% vs 0.3% (limit +0.5pp, p=0.0003, n=812)`.
pub(crate) fn figures(view: &AnalysisView) -> String {
    let (c, b) = (&view.canary, &view.baseline);
    let mut parts = Vec::new();
    for check in &view.checks {
        let p = check.p.map(|p| format!(", p={}", short(p))).unwrap_or_default();
        let mark = if check.result == "fail" { " FAIL" } else { "" };
        let text = match check.name.as_str() {
            "error_rate" => format!("error rate {} (limit {}){mark}", pct(c.error_rate), pct(check.limit)),
            "p99" => format!("p99 {} (limit {}){mark}", ms(c.p99_ms), ms(Some(check.limit))),
            "error_increase" if check.result != "skipped" && check.result != "insufficient" => format!(
                "error rate {} vs {} (limit +{}pp{p}, n={}){mark}",
                pct(c.error_rate),
                pct(b.error_rate),
                round2(check.limit * 100.0),
                c.requests
            ),
            "latency_ratio" if check.result != "skipped" && check.result != "insufficient" => {
                format!("p99 {} vs {} (limit ×{}{p}){mark}", ms(c.p99_ms), ms(b.p99_ms), round2(check.limit))
            }
            _ => continue,
        };
        parts.push(text);
    }
    format!("{}; canary n={}, baseline n={}", parts.join("; "), c.requests, b.requests)
}

fn pct(f: f64) -> String {
    format!("{}%", round2(f * 100.0))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{}ms", round2(v)))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn short(p: f64) -> String {
    if p < 0.0001 { format!("{p:.1e}") } else { format!("{}", (p * 10_000.0).round() / 10_000.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(requests: u64, errors: u64, p99: f64) -> Sample {
        Sample { requests, errors, p50_ms: Some(p99 / 2.0), p99_ms: Some(p99), buckets: vec![] }
    }

    #[test]
    fn too_few_canary_requests_is_insufficient_whatever_the_errors() {
        let a = Analysis { min_requests: 100, ..Analysis::default() };
        let (v, view) = judge(&a, &side(99, 99, 10.0), &side(1000, 0, 10.0), 30);
        assert_eq!(v, Verdict::Insufficient);
        assert_eq!(view.verdict, "insufficient");
        assert!(view.checks.iter().all(|c| c.result == "insufficient"), "{:?}", view.checks);
    }

    #[test]
    fn absolute_error_rate_fails_without_a_baseline() {
        let a = Analysis { min_requests: 100, max_error_rate: 0.01, ..Analysis::default() };
        let (v, view) = judge(&a, &side(200, 10, 10.0), &side(5, 0, 10.0), 30);
        assert_eq!(v, Verdict::Fail);
        let rate = view.checks.iter().find(|c| c.name == "error_rate").unwrap();
        assert_eq!((rate.result.as_str(), rate.value), ("fail", Some(0.05)));
        // The comparisons are skipped, not failed, while the baseline has too few requests.
        let inc = view.checks.iter().find(|c| c.name == "error_increase").unwrap();
        assert_eq!(inc.result, "skipped");
    }

    #[test]
    fn absolute_p99_limit_applies_only_when_set() {
        let mut a = Analysis { min_requests: 10, max_latency_ratio: 100.0, ..Analysis::default() };
        assert_eq!(judge(&a, &side(50, 0, 900.0), &side(50, 0, 900.0), 5).0, Verdict::Pass);
        a.max_p99 = Some(std::time::Duration::from_millis(800));
        let (v, view) = judge(&a, &side(50, 0, 900.0), &side(50, 0, 900.0), 5);
        assert_eq!(v, Verdict::Fail);
        assert!(figures(&view).contains("p99 900ms (limit 800ms) FAIL"), "{}", figures(&view));
    }

    #[test]
    fn identical_healthy_pools_pass() {
        let a = Analysis { min_requests: 100, ..Analysis::default() };
        let (v, view) = judge(&a, &side(1000, 2, 20.0), &side(1000, 2, 20.0), 60);
        assert_eq!(v, Verdict::Pass, "{view:?}");
        assert_eq!(view.window_s, 60);
    }
}
