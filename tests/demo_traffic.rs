//! `switchyard demo --traffic RPS --green-fail-rate R`: the built-in load
//! generator sends live traffic through the proxy with nobody else calling it,
//! the green fleet fails as told, and the help names the rollout commands.

#![allow(clippy::unwrap_used, unsafe_code)]

mod common;
use common::{BIN, ctl};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_test_support::Conn;

/// The value of one `switchyard_requests_total` series in a /metrics text.
fn requests(metrics: &str, pool: &str, code: &str) -> u64 {
    let series = format!("switchyard_requests_total{{service=\"demo\",pool=\"{pool}\",code=\"{code}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_traffic_reaches_green_which_fails_as_told() {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--traffic", "200", "--green-fail-rate", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut help = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next().map(Result::unwrap) {
        let end = line.starts_with("Stop with Ctrl-C");
        help.push(line);
        if end {
            break;
        }
    }
    let help = help.join("\n");
    assert!(help.contains("rollout start demo green --wait"), "{help}");
    assert!(help.contains("200 requests/s of demo traffic are running"), "{help}");
    assert!(help.contains("green answers 500 to 100% of requests"), "{help}");
    let admin = help.lines().find_map(|l| l.trim().strip_prefix("admin:")).unwrap().trim().to_owned();

    // Green's /healthz stays healthy, so the health gate lets traffic go there.
    let (code, _, err) = tokio::task::block_in_place(|| ctl(&admin, &["switch", "demo", "green"]));
    assert_eq!(code, 0, "{err}");
    // Nobody but the generator sends requests: green's 5xx count must grow.
    let mut c = Conn::open(admin.trim_start_matches("http://").parse().unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (_, metrics) = c.get("localhost", "/metrics").await;
        if requests(&metrics, "green", "5xx") >= 20 {
            break metrics;
        }
        assert!(Instant::now() < deadline, "no failing green traffic after 30s:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(requests(&metrics, "green", "2xx"), 0, "{metrics}");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGTERM) }, 0);
    assert_eq!(tokio::task::block_in_place(|| child.wait()).unwrap().code(), Some(0));
}

#[test]
fn bad_demo_flags_are_usage_errors() {
    for bad in [&["--green-fail-rate", "2"][..], &["--green-latency", "later"], &["--traffic", "1000000"]] {
        let out = Command::new(BIN).arg("demo").args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
