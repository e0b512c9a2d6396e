//! `[service.rollout]` in the file: every key of SPEC §2 and every rule, each
//! problem with its exact message and location.

use super::*;
use std::time::Duration;

/// A minimal valid file whose one service has `[service.rollout]` (line 9) followed
/// by `body` (from line 10 on).
fn with_rollout(body: &str) -> String {
    format!(
        "[listener]\naddress = \"127.0.0.1:8080\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]\n[service.rollout]\n{body}\n"
    )
}

fn settings(body: &str) -> RolloutSettings {
    match parse(&with_rollout(body), Path::new("sy.toml")) {
        Ok(c) => c.services[0].rollout.clone(),
        Err(e) => panic!("expected a valid rollout, got:\n{e}"),
    }
}

fn problems(body: &str) -> Vec<String> {
    match parse(&with_rollout(body), Path::new("sy.toml")) {
        Ok(_) => panic!("expected problems for:\n{body}"),
        Err(e) => e.lines(),
    }
}

fn steps(ws: &[u32]) -> Vec<Weight> {
    ws.iter().map(|w| Weight(*w)).collect()
}

#[test]
fn without_the_table_a_service_has_the_defaults() {
    let src = with_rollout("").replace("[service.rollout]\n", "");
    let c = parse(&src, Path::new("sy.toml")).unwrap();
    assert_eq!(c.services[0].rollout, RolloutSettings::default());
    assert_eq!(settings(""), RolloutSettings::default());
}

#[test]
fn every_key_is_read() {
    let s = settings(
        "steps = [0.5, 12.5, 50, 100.0]\nstep_interval = \"2m\"\ninterval = \"10s\"\nwarmup = \"0s\"\n\
         max_step_duration = \"2m\"\non_inconclusive = \"continue\"\nfailure_limit = 3\n\
         smoke = [{ path = \"/healthz\", status = 200 }, { path = \"/v1/ping?x=1\", status = 204 }]\n\
         [service.rollout.analysis]\nmin_requests = 50\nmax_error_rate = 0\nmax_p99 = \"800ms\"\n\
         max_error_increase = 1\nmax_latency_ratio = 1.5\nfast_fail_errors = 0",
    );
    let want = RolloutSettings {
        steps: steps(&[50, 1250, 5000, 10_000]),
        step_interval: Duration::from_secs(120),
        interval: Duration::from_secs(10),
        warmup: Duration::ZERO,
        max_step_duration: Duration::from_secs(120),
        on_inconclusive: OnInconclusive::Continue,
        failure_limit: 3,
        smoke: vec![Smoke { path: "/healthz".into(), status: 200 }, Smoke { path: "/v1/ping?x=1".into(), status: 204 }],
        analysis: Analysis {
            min_requests: 50,
            max_error_rate: 0.0,
            max_p99: Some(Duration::from_millis(800)),
            max_error_increase: 1.0,
            max_latency_ratio: 1.5,
            fast_fail_errors: 0,
        },
    };
    assert_eq!(s, want);
}

#[test]
fn keys_left_out_keep_their_defaults() {
    let s = settings("steps = [10, 100]\n[service.rollout.analysis]\nmax_error_rate = 0.02");
    let want = RolloutSettings {
        steps: steps(&[1000, 10_000]),
        analysis: Analysis { max_error_rate: 0.02, ..Analysis::default() },
        ..RolloutSettings::default()
    };
    assert_eq!(s, want);
    let inline = settings("analysis = { max_p99 = \"1s\" }");
    assert_eq!(inline.analysis.max_p99, Some(Duration::from_secs(1)));
    assert_eq!(inline.analysis.min_requests, 300);
}

#[test]
fn unknown_keys_and_wrong_table_types_are_located() {
    assert_eq!(
        problems("stepz = [100]\n[service.rollout.analysis]\nmax_errors = 1\nmin_requests = 10"),
        [
            "sy.toml:10:1: unknown key `stepz` in [service.rollout]",
            "sy.toml:12:1: unknown key `max_errors` in [service.rollout.analysis]",
        ]
    );
    assert_eq!(problems("analysis = 5"), ["sy.toml:10:12: `analysis` must be a table, found integer"]);
    let src = with_rollout("")
        .replace("[service.rollout]\n", "")
        .replace("[service.traffic]", "rollout = \"fast\"\n[service.traffic]");
    let lines = parse(&src, Path::new("sy.toml")).unwrap_err().lines();
    assert_eq!(lines, ["sy.toml:5:11: `rollout` must be a table, found string"]);
}

#[test]
fn steps_must_be_ascending_above_0_and_end_at_100() {
    assert_eq!(problems("steps = []"), ["sy.toml:10:9: `steps` must not be empty (the last step is 100)"]);
    assert_eq!(problems("steps = [5, 50]"), ["sy.toml:10:13: `steps` must end at 100, found 50"]);
    assert_eq!(
        problems("steps = [0, 25, 25, 10, 100]"),
        [
            "sy.toml:10:10: `steps`: a step must be above 0",
            "sy.toml:10:17: `steps` must be strictly ascending, found 25 after 25",
            "sy.toml:10:21: `steps` must be strictly ascending, found 10 after 25",
        ]
    );
    assert_eq!(
        problems("steps = [-1, 1.234, \"5\", 0x10, 100.5]"),
        [
            "sy.toml:10:10: `steps`: weight -1 is negative",
            "sy.toml:10:14: `steps`: weight 1.234 has more than two decimals",
            "sy.toml:10:21: `steps` must hold numbers, found string",
            "sy.toml:10:26: `steps`: weight 0x10 is not a number",
            "sy.toml:10:32: `steps`: weight 100.5 is above 100",
        ]
    );
    assert_eq!(problems("steps = 100"), ["sy.toml:10:9: `steps` must be an array, found integer"]);
    assert_eq!(settings("steps = [100]").steps, steps(&[10_000]));
}

#[test]
fn durations_of_0_are_refused_except_warmup() {
    assert_eq!(
        problems(
            "step_interval = \"0s\"\ninterval = \"0ms\"\nmax_step_duration = \"0m\"\nwarmup = \"0s\"\n\
             [service.rollout.analysis]\nmax_p99 = \"0s\""
        ),
        [
            "sy.toml:10:17: `step_interval` must be longer than 0",
            "sy.toml:11:12: `interval` must be longer than 0",
            "sy.toml:12:21: `max_step_duration` must be longer than 0",
            "sy.toml:15:11: `max_p99` must be longer than 0",
        ]
    );
    assert_eq!(settings("warmup = \"30s\"").warmup, Duration::from_secs(30));
    let bad = problems("warmup = \"soon\"\ninterval = 5");
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].starts_with("sy.toml:10:10: `warmup`: invalid duration \"soon\""), "{bad:?}");
    assert_eq!(bad[1], "sy.toml:11:12: `interval` must be a string, found integer");
}

#[test]
fn max_step_duration_must_be_at_least_step_interval() {
    assert_eq!(
        problems("step_interval = \"5m\"\nmax_step_duration = \"1m\""),
        ["sy.toml:11:21: `max_step_duration` (1m) must be at least `step_interval` (5m)"]
    );
    // Against the default max_step_duration (10m): located at step_interval.
    assert_eq!(
        problems("step_interval = \"20m\""),
        ["sy.toml:10:17: `max_step_duration` (10m) must be at least `step_interval` (20m)"]
    );
    // Equal is fine; a refused value is not compared again.
    assert_eq!(settings("step_interval = \"10m\"").step_interval, Duration::from_secs(600));
    assert_eq!(problems("step_interval = \"1x\"\nmax_step_duration = \"1s\"").len(), 1);
}

#[test]
fn counts_have_their_minimum() {
    assert_eq!(
        problems("failure_limit = 0\n[service.rollout.analysis]\nmin_requests = 0\nfast_fail_errors = -1"),
        [
            "sy.toml:10:17: `failure_limit` must be at least 1, found 0",
            "sy.toml:12:16: `min_requests` must be at least 1, found 0",
            "sy.toml:13:20: `fast_fail_errors` must be at least 0, found -1",
        ]
    );
    assert_eq!(
        problems("failure_limit = 4294967296\nanalysis = { min_requests = 1.5 }"),
        [
            "sy.toml:10:17: `failure_limit` must be at most 4294967295, found 4294967296",
            "sy.toml:11:29: `min_requests` must be an integer, found float",
        ]
    );
    assert_eq!(settings("analysis = { min_requests = 5000000000 }").analysis.min_requests, 5_000_000_000);
}

#[test]
fn rates_and_ratios_have_their_ranges() {
    assert_eq!(
        problems("[service.rollout.analysis]\nmax_error_rate = 2\nmax_error_increase = -0.1\nmax_latency_ratio = 0.99"),
        [
            "sy.toml:11:18: `max_error_rate` must be between 0 and 1, found 2",
            "sy.toml:12:22: `max_error_increase` must be between 0 and 1, found -0.1",
            "sy.toml:13:21: `max_latency_ratio` must be at least 1, found 0.99",
        ]
    );
    assert_eq!(
        problems(
            "[service.rollout.analysis]\nmax_latency_ratio = inf\nmax_error_rate = nan\nmax_error_increase = \"1\""
        ),
        [
            "sy.toml:11:21: `max_latency_ratio` must be a finite number, found inf",
            "sy.toml:12:18: `max_error_rate` must be a finite number, found nan",
            "sy.toml:13:22: `max_error_increase` must be a number, found string",
        ]
    );
    let s = settings("[service.rollout.analysis]\nmax_error_rate = 1\nmax_latency_ratio = 1\nmax_error_increase = 0");
    assert_eq!(
        (s.analysis.max_error_rate, s.analysis.max_latency_ratio, s.analysis.max_error_increase),
        (1.0, 1.0, 0.0)
    );
}

#[test]
fn on_inconclusive_is_one_of_three() {
    assert_eq!(
        problems("on_inconclusive = \"later\""),
        ["sy.toml:10:19: `on_inconclusive` must be \"pause\", \"abort\" or \"continue\", found \"later\""]
    );
    assert_eq!(settings("on_inconclusive = \"abort\"").on_inconclusive, OnInconclusive::Abort);
    assert_eq!(settings("on_inconclusive = \"pause\"").on_inconclusive, OnInconclusive::Pause);
}

#[test]
fn smoke_entries_need_an_absolute_path_and_a_status() {
    assert_eq!(
        problems(
            "smoke = [{ path = \"healthz\", status = 600 }, { path = \"/a\" }, \"/b\", { path = \"/c\", status = 99, verb = \"GET\" }]"
        ),
        [
            "sy.toml:10:19: `path` must be an absolute request path, found \"healthz\"",
            "sy.toml:10:39: `status` must be between 100 and 599, found 600",
            "sy.toml:10:46: missing key `status` in a `smoke` entry",
            "sy.toml:10:63: `smoke` must be a table, found string",
            "sy.toml:10:93: `status` must be between 100 and 599, found 99",
            "sy.toml:10:97: unknown key `verb` in a `smoke` entry",
        ]
    );
    assert_eq!(settings("smoke = []").smoke, []);
}
