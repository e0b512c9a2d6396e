//! `GET /v1/services/{svc}/stats?window=60s[&step=10s]`: live per-pool figures
//! over the last `window` of one-second samples (SPEC §4). The window ends at the
//! latest sample, so the second in progress is not in it; every pool is listed,
//! with zeros (and p's of 0) when it had no request.

use crate::respond::{self, Resp};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use switchyard_proxy::{PoolStats, Router};
use switchyard_stats::{Point, RING_SECONDS, Window};

/// `window` when none is given, in seconds.
const DEFAULT_WINDOW: u64 = 60;

/// The parameters of a stats call, in whole seconds.
#[derive(Debug, PartialEq, Eq)]
struct StatsQuery {
    window: u64,
    step: Option<u64>,
}

/// A duration parameter between 1 s and `max` s, in seconds (a part of a second
/// rounds up: samples are one second); `Err` is a 400 message.
fn seconds(name: &str, value: &str, max: u64) -> Result<u64, String> {
    let d = switchyard_config::parse_duration(value).map_err(|e| format!("{name}: {e}"))?;
    let whole = d.as_secs().saturating_add(u64::from(d.subsec_nanos() != 0));
    match whole {
        s if (1..=max).contains(&s) => Ok(s),
        _ => Err(format!(
            "{name} must be between 1s and {}, got \"{value}\"",
            switchyard_config::format_duration(Duration::from_secs(max))
        )),
    }
}

/// Parses `window=D[&step=D]` (percent-decoded); `Err` is a 400 message.
fn stats_query(query: Option<&str>) -> Result<StatsQuery, String> {
    let [window, step] = crate::query::params("stats", query, ["window", "step"])?;
    let window = match window {
        Some(w) => seconds("window", &w, RING_SECONDS)?,
        None => DEFAULT_WINDOW,
    };
    let step = match step {
        None => None,
        Some(s) => Some(seconds("step", &s, window).map_err(|e| format!("{e} (at most the window)"))?),
    };
    Ok(StatsQuery { window, step })
}

/// `GET /v1/services/{svc}/stats`.
pub fn stats(router: &Router, service: &str, query: Option<&str>) -> Resp {
    let q = match stats_query(query) {
        Ok(q) => q,
        Err(message) => return respond::error(http::StatusCode::BAD_REQUEST, message),
    };
    let pools: Vec<(Box<str>, Arc<PoolStats>)> = {
        let table = router.load();
        let Some(svc) = table.service(service) else {
            return respond::error(http::StatusCode::NOT_FOUND, format!("unknown service \"{service}\""));
        };
        svc.pools.iter().map(|p| (p.name.clone(), p.stats.clone())).collect()
    };
    let pools = pools.into_iter().map(|(name, s)| (name, figures(&s, &q))).collect();
    respond::json(http::StatusCode::OK, &Answer { window_s: q.window, pools: Pools(pools) })
}

#[derive(serde::Serialize)]
struct Answer {
    window_s: u64,
    pools: Pools,
}

/// Pools in config order, as a JSON object.
struct Pools(Vec<(Box<str>, Figures)>);

impl Serialize for Pools {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, f) in &self.0 {
            m.serialize_entry(name, f)?;
        }
        m.end()
    }
}

#[derive(serde::Serialize)]
struct Figures {
    requests: u64,
    rps: f64,
    errors: u64,
    error_rate: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    inflight: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    series: Option<Vec<SeriesPoint>>,
}

#[derive(serde::Serialize)]
struct SeriesPoint {
    /// Unix seconds of the end of the point.
    t: u64,
    requests: u64,
    errors: u64,
    p99_ms: f64,
}

/// `x` rounded to `digits` decimals.
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Milliseconds to the microsecond; 0 when there is no value (idle).
fn ms(d: Option<Duration>) -> f64 {
    d.map_or(0.0, |d| round(d.as_secs_f64() * 1000.0, 3))
}

/// One pool's figures over ticks `(latest - window, latest]`.
fn figures(stats: &PoolStats, q: &StatsQuery) -> Figures {
    let latest = stats.latest_tick();
    let w = latest.map_or_else(Window::default, |l| stats.window(l.saturating_sub(q.window), l));
    let series = q.step.map(|step| series(stats, latest, q.window, step));
    Figures {
        requests: w.requests,
        rps: round(w.requests as f64 / q.window as f64, 3),
        errors: w.errors,
        error_rate: round(w.error_rate(), 6),
        p50_ms: ms(w.quantile(0.5)),
        p90_ms: ms(w.quantile(0.9)),
        p99_ms: ms(w.quantile(0.99)),
        inflight: stats.inflight(),
        series,
    }
}

/// `window / step` points ending at the latest sample, oldest first; points from
/// before the sampler started (or all of them, before its first sample) are zeros.
fn series(stats: &PoolStats, latest: Option<u64>, window: u64, step: u64) -> Vec<SeriesPoint> {
    let n = window / step;
    let (points, end_unix): (Vec<Point>, u64) = match latest {
        Some(l) => (stats.series(l.saturating_sub(window), l, step), stats.unix_time(l).unwrap_or_else(unix_now)),
        None => (Vec::new(), unix_now()),
    };
    let missing = n.saturating_sub(points.len() as u64);
    let t = |j: u64| end_unix.saturating_sub((n - 1 - j) * step);
    let empty = (0..missing).map(|j| SeriesPoint { t: t(j), requests: 0, errors: 0, p99_ms: 0.0 });
    let filled = points.into_iter().zip(missing..n).map(|(p, j)| SeriesPoint {
        t: t(j),
        requests: p.requests,
        errors: p.errors,
        p99_ms: ms(p.p99),
    });
    empty.chain(filled).collect()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(window: u64, step: Option<u64>) -> StatsQuery {
        StatsQuery { window, step }
    }

    #[test]
    fn stats_query_parses_and_refuses_clearly() {
        assert_eq!(stats_query(None).unwrap(), q(60, None));
        assert_eq!(stats_query(Some("window=5m&step=10s")).unwrap(), q(300, Some(10)));
        assert_eq!(stats_query(Some("window=1s&step=1s")).unwrap(), q(1, Some(1)));
        assert_eq!(stats_query(Some("window=15m&step=1s")).unwrap(), q(900, Some(1)));
        assert_eq!(stats_query(Some("step=60s")).unwrap(), q(60, Some(60)));
        assert_eq!(stats_query(Some("window=1%30s")).unwrap(), q(10, None));
        let err = |s: &str| stats_query(Some(s)).unwrap_err();
        assert!(err("window=0s").starts_with("window must be between 1s and 15m"), "{}", err("window=0s"));
        assert!(err("window=901s").starts_with("window must be between 1s and 15m"));
        assert!(err("window=1h").starts_with("window must be between"));
        assert_eq!(stats_query(Some("window=1500ms")).unwrap(), q(2, None), "a part of a second rounds up");
        assert_eq!(stats_query(Some("window=60s&step=7s")).unwrap(), q(60, Some(7)), "the oldest point is shorter");
        assert!(err("window=soon").starts_with("window: invalid duration"));
        assert!(err("window=").starts_with("window: invalid duration"));
        assert!(err("window=60s&step=0s").starts_with("step must be between 1s and 1m"));
        assert!(err("window=60s&step=2m").starts_with("step must be between 1s and 1m"));
        assert!(err("window=1m&window=2m").contains("window given more than once"));
        let e = err("window=1m&colour=red");
        assert!(e.contains("\"colour\"") && e.contains("known: window, step"), "{e}");
    }

    #[test]
    fn series_pads_the_time_before_the_first_sample_with_zeros() {
        let stats = PoolStats::default();
        // No sample yet: all zeros, ending now.
        let s = series(&stats, None, 30, 10);
        assert_eq!(s.len(), 3);
        assert!(s.iter().all(|p| p.requests == 0 && p.p99_ms == 0.0));
        assert_eq!((s[1].t - s[0].t, s[2].t - s[1].t), (10, 10));
        stats.record(200, Duration::from_millis(2));
        stats.sample(4);
        let s = series(&stats, Some(4), 30, 10);
        assert_eq!(s.iter().map(|p| p.requests).collect::<Vec<_>>(), [0, 0, 1]);
        assert_eq!(s[2].t, stats.unix_time(4).unwrap());
        assert_eq!(s[0].t, s[2].t - 20);
        assert!(s[2].p99_ms > 1.8 && s[2].p99_ms < 2.2, "{}", s[2].p99_ms);
    }
}
