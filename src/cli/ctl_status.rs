//! `ctl status [SERVICE]`: traffic and versions, then per pool its weight, health,
//! requests in flight and the live figures of the last minute (req/s, error rate,
//! p99, from `…/stats?window=60s`; `-` when the server has no stats), and a
//! running rollout on one line.

use super::ctl_fmt::{ms, num, percent, rate};
use super::ctl_http::{Admin, Answer};
use super::ctl_rollout_print;
use serde_json::Value;
use std::fmt::Write;
use std::process::ExitCode;

/// The window the figures cover.
const WINDOW: &str = "60s";

/// Fetches and prints; `--json` prints the API's own answer.
pub async fn run(admin: &Admin, service: Option<&str>, json: bool) -> ExitCode {
    let path = service.map_or_else(|| "/v1/services".to_owned(), |s| format!("/v1/services/{s}"));
    let value = match admin.get(&path).await {
        Answer::Ok(v) => v,
        Answer::Done(code) => return code,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let services = match service {
        Some(_) => vec![value.clone()],
        None => value["services"].as_array().cloned().unwrap_or_default(),
    };
    let mut stats = Vec::with_capacity(services.len());
    for s in &services {
        let name = s["name"].as_str().unwrap_or_default();
        stats.push(admin.try_get(&format!("/v1/services/{name}/stats?window={WINDOW}")).await);
    }
    if service.is_none() {
        super::ctl_print::reload_header(&value);
    }
    print!("{}", table(&services, &stats));
    ExitCode::SUCCESS
}

/// The services, their running rollouts, then one row per pool.
fn table(services: &[Value], stats: &[Option<Value>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<16} {:>7}  {:<10} TRAFFIC", "SERVICE", "VERSION", "ACTIVE");
    for s in services {
        let _ = writeln!(
            out,
            "{:<16} {:>7}  {:<10} {}",
            s["name"].as_str().unwrap_or("?"),
            num(&s["version"]),
            s["active"].as_str().unwrap_or("(split)"),
            super::ctl_print::traffic(&s["traffic"])
        );
        if ctl_rollout_print::is_running(&s["rollout"]) {
            let _ = writeln!(out, "  rollout: {}", ctl_rollout_print::summary(&s["rollout"]));
        }
    }
    let _ = writeln!(
        out,
        "\n{:<16} {:<10} {:>6} {:>8} {:>9} {:>8} {:>7} {:>7}",
        "SERVICE", "POOL", "WEIGHT", "HEALTHY", "IN FLIGHT", "REQ/S", "ERRORS", "P99"
    );
    for (s, st) in services.iter().zip(stats) {
        for (pool, p) in s["pools"].as_object().into_iter().flatten() {
            let fig = st.as_ref().map_or(&Value::Null, |st| &st["pools"][pool]);
            let idle = fig["requests"].as_u64() == Some(0);
            let total = p["backends"].as_array().map_or(0, Vec::len);
            let _ = writeln!(
                out,
                "{:<16} {:<10} {:>6} {:>8} {:>9} {:>8} {:>7} {:>7}",
                s["name"].as_str().unwrap_or("?"),
                pool,
                num(&s["traffic"][pool]),
                format!("{}/{total}", num(&p["healthy"])),
                num(&p["inflight"]),
                rate(&fig["rps"]),
                if idle { "-".to_owned() } else { percent(&fig["error_rate"]) },
                if idle { "-".to_owned() } else { ms(&fig["p99_ms"]) }
            );
        }
    }
    let _ = writeln!(out, "(req/s, errors and p99 over the last {WINDOW})");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(rollout: Value) -> Value {
        json!({
            "name": "demo", "version": 4, "active": null, "traffic": {"blue": 50, "green": 50},
            "pools": {
                "blue": {"healthy": 2, "inflight": 1, "backends": [{}, {}]},
                "green": {"healthy": 1, "inflight": 0, "backends": [{}, {}]}
            },
            "rollout": rollout
        })
    }

    fn stats() -> Value {
        json!({"window_s": 60, "pools": {
            "blue": {"requests": 2990, "rps": 49.83, "errors": 0, "error_rate": 0.0, "p50_ms": 2.0, "p90_ms": 3.0, "p99_ms": 3.4, "inflight": 1},
            "green": {"requests": 0, "rps": 0.0, "errors": 0, "error_rate": 0.0, "p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "inflight": 0}
        }})
    }

    #[test]
    fn pools_show_live_figures_and_an_idle_pool_dashes() {
        let text = table(&[service(Value::Null)], &[Some(stats())]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "demo                   4  (split)    blue=50 green=50");
        assert_eq!(lines[4], "demo             blue           50      2/2         1     49.8   0.00%   3.4ms");
        assert_eq!(lines[5], "demo             green          50      1/2         0      0.0       -       -");
    }

    #[test]
    fn without_stats_from_the_server_the_figures_are_dashes() {
        let text = table(&[service(Value::Null)], &[None]);
        let blue = text.lines().find(|l| l.contains(" blue ")).unwrap_or_default();
        assert!(blue.ends_with("        -       -       -"), "{blue}");
    }

    #[test]
    fn a_running_rollout_gets_one_line_and_a_finished_one_none() {
        let running = json!({"pool": "green", "phase": "paused", "steps": [10, 50, 100], "step": 1, "weight": 50});
        let text = table(&[service(running)], &[None]);
        assert_eq!(text.lines().nth(2), Some("  rollout: green step 2/3, weight 50%, paused"));
        let done = json!({"pool": "green", "phase": "promoted", "steps": [10, 50, 100], "step": 2, "weight": 100});
        assert!(!table(&[service(done)], &[None]).contains("rollout:"));
    }
}
