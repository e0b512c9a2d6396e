//! A rollout object (SPEC §9) as text: the one progress line of `--wait` and
//! `--watch`, the block of `rollout status`, the one-line summary of `status`.

use super::ctl_fmt::{Due, ms, num, p_value, percent, points, span, until};
use serde_json::Value;
use std::fmt::Write;
use std::time::SystemTime;

/// Phases in which a rollout still holds traffic.
pub fn is_running(r: &Value) -> bool {
    matches!(r["phase"].as_str(), Some("progressing" | "paused"))
}

/// `step 2/3`.
fn step_of(r: &Value) -> String {
    let n = r["steps"].as_array().map_or(0, Vec::len);
    match r["step"].as_u64() {
        Some(k) => format!("step {}/{n}", k + 1),
        None => format!("step -/{n}"),
    }
}

/// `green 50%`.
fn weight(r: &Value) -> String {
    format!("{} {}%", r["pool"].as_str().unwrap_or("?"), num(&r["weight"]))
}

/// `next step in 8s`, `next step due`, or nothing (not progressing, or no next step).
fn countdown(r: &Value, now: SystemTime) -> Option<String> {
    if r["phase"].as_str() != Some("progressing") {
        return None;
    }
    match until(&r["next_step_at"], now)? {
        Due::In(left) => Some(format!("next step in {}", span(left))),
        Due::Passed => Some("next step due".to_owned()),
    }
}

/// `err 0.37% p99 12ms`.
fn side(s: &Value) -> String {
    format!("err {} p99 {}", percent(&s["error_rate"]), ms(&s["p99_ms"]))
}

/// `pass`, or `fail 1/2` while failures count towards the rollback.
fn verdict(r: &Value) -> String {
    let a = &r["analysis"];
    let v = a["verdict"].as_str().unwrap_or("-");
    match (a["consecutive_failures"].as_u64(), r["settings"]["failure_limit"].as_u64()) {
        (Some(f), Some(limit)) if f > 0 => format!("{v} {f}/{limit}"),
        (Some(f), None) if f > 0 => format!("{v} x{f}"),
        _ => v.to_owned(),
    }
}

/// The progress line: step, weight, time to the next step, canary vs baseline
/// error rate and p99, canary sample count, verdict. Without `now` the countdown
/// is left out: that form changes only when something happened.
pub fn progress_line(r: &Value, now: Option<SystemTime>) -> String {
    let a = &r["analysis"];
    let mut parts = Vec::with_capacity(8);
    match r["phase"].as_str() {
        Some("progressing") => parts.push(step_of(r)),
        phase => parts.push(format!("[{}] {}", phase.unwrap_or("?"), step_of(r))),
    }
    parts.push(weight(r));
    if let Some(c) = now.and_then(|now| countdown(r, now)) {
        parts.push(c);
    }
    parts.push(format!("canary {} n={}", side(&a["canary"]), num(&a["canary"]["requests"])));
    parts.push(format!("baseline {}", side(&a["baseline"])));
    parts.push(verdict(r));
    parts.join("  ")
}

/// `status`: `green step 2/3, weight 50%, progressing`.
pub fn summary(r: &Value) -> String {
    format!(
        "{} {}, weight {}%, {}",
        r["pool"].as_str().unwrap_or("?"),
        step_of(r),
        num(&r["weight"]),
        r["phase"].as_str().unwrap_or("?")
    )
}

/// `10 > [50] > 100`: the ladder with the current step marked.
fn ladder(r: &Value) -> String {
    let current = r["step"].as_u64();
    let steps = r["steps"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mark = |(i, w): (usize, &Value)| {
        if current == Some(i as u64) { format!("[{}]", num(w)) } else { num(w) }
    };
    steps.iter().enumerate().map(mark).collect::<Vec<_>>().join(" > ")
}

/// A check's value or limit, in the unit its name implies.
fn check_figure(name: &str, v: &Value) -> String {
    match name {
        "error_rate" => percent(v),
        "error_increase" => points(v),
        "p99" => ms(v),
        "latency_ratio" if v.is_number() => format!("{}x", num(v)),
        _ => num(v),
    }
}

/// `ctl rollout status SERVICE`.
pub fn block(service: &str, r: &Value, now: SystemTime) -> String {
    let mut out = String::new();
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let _ = writeln!(
        out,
        "rollout {} of {service}: {} from {}, {}",
        text(&r["id"]),
        text(&r["pool"]),
        text(&r["baseline"]),
        text(&r["phase"])
    );
    if let Some(m) = r["message"].as_str().filter(|m| !m.is_empty()) {
        let _ = writeln!(out, "  {m}");
    }
    let _ = write!(out, "  started   {} by {}", text(&r["started_at"]), text(&r["actor"]));
    if let Some(reason) = r["reason"].as_str().filter(|m| !m.is_empty()) {
        let _ = write!(out, " ({reason})");
    }
    if let Some(ended) = r["ended_at"].as_str() {
        let _ = write!(out, ", ended {ended}");
    }
    let _ = writeln!(out);
    let mut at = format!("{}, {}", step_of(r), weight(r));
    if let Some(c) = countdown(r, now) {
        at = format!("{at}, {c}");
    }
    let _ = writeln!(out, "  steps     {}   ({at})", ladder(r));
    let a = &r["analysis"];
    if a.is_object() {
        let _ = writeln!(
            out,
            "  analysis  {} over a {}s window, {} consecutive failure(s) of {}",
            a["verdict"].as_str().unwrap_or("-"),
            num(&a["window_s"]),
            num(&a["consecutive_failures"]),
            num(&r["settings"]["failure_limit"])
        );
        let _ = writeln!(
            out,
            "    {:<10} {:>9} {:>7} {:>10} {:>8} {:>8}",
            "", "REQUESTS", "ERRORS", "ERROR RATE", "P50", "P99"
        );
        for name in ["canary", "baseline"] {
            let s = &a[name];
            let _ = writeln!(
                out,
                "    {name:<10} {:>9} {:>7} {:>10} {:>8} {:>8}",
                num(&s["requests"]),
                num(&s["errors"]),
                percent(&s["error_rate"]),
                ms(&s["p50_ms"]),
                ms(&s["p99_ms"])
            );
        }
        let checks = a["checks"].as_array().map(Vec::as_slice).unwrap_or_default();
        if !checks.is_empty() {
            let _ = writeln!(out, "    {:<16} {:>10} {:>10} {:>8}  RESULT", "CHECK", "VALUE", "LIMIT", "P");
        }
        for c in checks {
            let name = c["name"].as_str().unwrap_or("?");
            let _ = writeln!(
                out,
                "    {name:<16} {:>10} {:>10} {:>8}  {}",
                check_figure(name, &c["value"]),
                check_figure(name, &c["limit"]),
                p_value(&c["p"]),
                c["result"].as_str().unwrap_or("-")
            );
        }
    }
    out
}

#[cfg(test)]
#[path = "ctl_rollout_print_tests.rs"]
mod tests;
