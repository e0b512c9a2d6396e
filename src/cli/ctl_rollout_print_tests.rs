//! The rollout's text forms, on a sample object shaped as SPEC §9 shows it.

use super::*;
use serde_json::json;

fn now() -> SystemTime {
    humantime::parse_rfc3339("2025-05-01T12:00:00Z").unwrap_or_else(|e| panic!("{e}"))
}

/// A rollout of green on step 2 of 3 (50 %), 8 s before its next step.
fn sample() -> Value {
    json!({
        "id": "r-7", "pool": "green", "baseline": "blue", "phase": "progressing",
        "message": "step 2/3: analysis passed, waiting for step_interval",
        "started_at": "2025-05-01T11:59:30Z", "ended_at": null, "actor": "api", "reason": "release 42",
        "from": {"blue": 100, "green": 0}, "scope": "local",
        "steps": [10, 50, 100], "step": 1, "weight": 50,
        "step_started_at": "2025-05-01T11:59:58Z", "next_step_at": "2025-05-01T12:00:08Z",
        "settings": {"steps": [10, 50, 100], "step_interval": "10s", "interval": "2s", "failure_limit": 2,
                     "analysis": {"min_requests": 50, "max_error_rate": 0.01}},
        "analysis": {
            "verdict": "pass", "window_s": 14, "consecutive_failures": 0,
            "canary": {"requests": 812, "errors": 3, "error_rate": 0.0037, "p50_ms": 4.2, "p99_ms": 12.3},
            "baseline": {"requests": 3123, "errors": 3, "error_rate": 0.00096, "p50_ms": 3.9, "p99_ms": 11.0},
            "checks": [
                {"name": "error_rate", "value": 0.0037, "limit": 0.01, "p": null, "result": "pass"},
                {"name": "error_increase", "value": 0.0027, "limit": 0.005, "p": 0.03, "result": "pass"},
                {"name": "p99", "value": 12.3, "limit": null, "p": null, "result": "skipped"},
                {"name": "latency_ratio", "value": 1.12, "limit": 1.25, "p": 0.41, "result": "pass"}
            ]
        }
    })
}

#[test]
fn the_progress_line_has_step_weight_countdown_both_sides_n_and_verdict() {
    assert_eq!(
        progress_line(&sample(), Some(now())),
        "step 2/3  green 50%  next step in 8s  canary err 0.37% p99 12ms n=812  baseline err 0.10% p99 11ms  pass"
    );
}

#[test]
fn without_a_clock_the_line_changes_only_when_the_rollout_does() {
    let r = sample();
    let key = progress_line(&r, None);
    assert!(!key.contains("next step"), "{key}");
    let later = now() + std::time::Duration::from_secs(3);
    assert_ne!(progress_line(&r, Some(now())), progress_line(&r, Some(later)));
    let mut moved = r.clone();
    moved["analysis"]["canary"]["requests"] = json!(900);
    assert_ne!(progress_line(&moved, None), key);
}

#[test]
fn an_overdue_step_a_failing_verdict_and_a_phase_show() {
    let mut r = sample();
    r["next_step_at"] = json!("2025-05-01T11:59:59Z");
    r["analysis"]["verdict"] = json!("fail");
    r["analysis"]["consecutive_failures"] = json!(1);
    assert!(progress_line(&r, Some(now())).contains("next step due"));
    assert!(progress_line(&r, Some(now())).ends_with("  fail 1/2"));
    r["phase"] = json!("rolled_back");
    let line = progress_line(&r, Some(now()));
    assert!(line.starts_with("[rolled_back] step 2/3"), "{line}");
    assert!(!line.contains("next step"), "{line}");
}

#[test]
fn a_rollout_with_no_analysis_yet_prints_dashes_not_garbage() {
    let mut r = sample();
    r["analysis"] = json!(null);
    r["next_step_at"] = json!(null);
    assert_eq!(progress_line(&r, Some(now())), "step 2/3  green 50%  canary err - p99 - n=-  baseline err - p99 -  -");
}

#[test]
fn the_summary_names_pool_step_weight_and_phase() {
    assert_eq!(summary(&sample()), "green step 2/3, weight 50%, progressing");
    assert!(is_running(&sample()));
    assert!(!is_running(&json!({"phase": "promoted"})));
}

#[test]
fn the_status_block_marks_the_current_step_and_tables_the_checks() {
    let text = block("demo", &sample(), now());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "rollout r-7 of demo: green from blue, progressing");
    assert_eq!(lines[1], "  step 2/3: analysis passed, waiting for step_interval");
    assert_eq!(lines[2], "  started   2025-05-01T11:59:30Z by api (release 42)");
    assert_eq!(lines[3], "  steps     10 > [50] > 100   (step 2/3, green 50%, next step in 8s)");
    assert_eq!(lines[4], "  analysis  pass over a 14s window, 0 consecutive failure(s) of 2");
    assert!(lines[6].starts_with("    canary           812       3      0.37%    4.2ms     12ms"), "{}", lines[6]);
    assert!(lines[7].starts_with("    baseline        3123       3      0.10%    3.9ms     11ms"), "{}", lines[7]);
    assert_eq!(lines[9], "    error_rate            0.37%      1.00%        -  pass");
    assert_eq!(lines[10], "    error_increase      +0.27pp    +0.50pp   0.0300  pass");
    assert_eq!(lines[11], "    p99                    12ms          -        -  skipped");
    assert_eq!(lines[12], "    latency_ratio         1.12x      1.25x   0.4100  pass");
}
