//! Figures as `ctl` prints them: weights, shares, latencies, countdowns. A value
//! that is missing (an older server, no data yet) prints as `-`.

use serde_json::Value;
use std::time::{Duration, SystemTime};

/// A plain number: `50`, `12.5`, `0.0003`.
pub fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Some(f) if f.abs() >= 0.01 => trim(format!("{f:.2}")),
        Some(f) => format!("{f:.2e}"),
        None => v.as_str().map_or_else(|| "-".to_owned(), str::to_owned),
    }
}

fn trim(s: String) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// A share 0–1 as a percentage: `0.0037` → `0.37%`.
pub fn percent(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".to_owned(), |f| format!("{:.2}%", f * 100.0))
}

/// A difference of shares in percentage points, signed: `+0.27pp`.
pub fn points(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".to_owned(), |f| format!("{:+.2}pp", f * 100.0))
}

/// Milliseconds: `4.2ms`, `12ms`, `1.25s`.
pub fn ms(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f >= 1000.0 => format!("{:.2}s", f / 1000.0),
        Some(f) if f >= 10.0 => format!("{f:.0}ms"),
        Some(f) => format!("{f:.1}ms"),
        None => v.as_str().map_or_else(|| "-".to_owned(), str::to_owned),
    }
}

/// A p-value: `0.0300`, `<0.0001`.
pub fn p_value(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f < 0.0001 => "<0.0001".to_owned(),
        Some(f) => format!("{f:.4}"),
        None => "-".to_owned(),
    }
}

/// A request rate: `49.8`.
pub fn rate(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".to_owned(), |f| format!("{f:.1}"))
}

/// A short span: `8s`, `1m05s`, `2h03m`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// When a time comes, seen from now.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// This long from now.
    In(Duration),
    /// It has passed.
    Passed,
}

/// When the RFC 3339 time in `v` comes, seen from `now`; `None` when `v` is not a time.
pub fn until(v: &Value, now: SystemTime) -> Option<Due> {
    let at = humantime::parse_rfc3339_weak(v.as_str()?).ok()?;
    Some(at.duration_since(now).map_or(Due::Passed, Due::In))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_print_compactly_and_missing_ones_as_a_dash() {
        assert_eq!(num(&json!(50)), "50");
        assert_eq!(num(&json!(50.0)), "50");
        assert_eq!(num(&json!(12.5)), "12.5");
        assert_eq!(num(&json!(33.33)), "33.33");
        assert_eq!(num(&json!(null)), "-");
        assert_eq!(percent(&json!(0.0037)), "0.37%");
        assert_eq!(points(&json!(0.0027)), "+0.27pp");
        assert_eq!(points(&json!(-0.001)), "-0.10pp");
        assert_eq!(ms(&json!(4.24)), "4.2ms");
        assert_eq!(ms(&json!(812.4)), "812ms");
        assert_eq!(ms(&json!(1250)), "1.25s");
        assert_eq!(ms(&json!(null)), "-");
        assert_eq!(p_value(&json!(0.03)), "0.0300");
        assert_eq!(p_value(&json!(0.00001)), "<0.0001");
        assert_eq!(p_value(&json!(null)), "-");
        assert_eq!(rate(&json!(49.83)), "49.8");
    }

    #[test]
    fn spans_read_like_a_clock() {
        assert_eq!(span(Duration::from_millis(7600)), "8s");
        assert_eq!(span(Duration::from_secs(65)), "1m05s");
        assert_eq!(span(Duration::from_secs(7380)), "2h03m");
    }

    #[test]
    fn until_counts_down_to_a_time_and_says_when_it_passed() {
        let now = humantime::parse_rfc3339("2025-05-01T12:00:00Z").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(until(&json!("2025-05-01T12:00:08Z"), now), Some(Due::In(Duration::from_secs(8))));
        assert_eq!(until(&json!("2025-05-01T11:59:58Z"), now), Some(Due::Passed));
        assert_eq!(until(&json!(null), now), None);
        assert_eq!(until(&json!("soon"), now), None);
    }
}
