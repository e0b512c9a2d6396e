//! The start call's overrides: the file's rules, the field named as the caller
//! wrote it, no TOML locations.

use super::*;
use serde_json::{Map, Value, json};
use std::time::Duration;

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn refused(v: Value) -> String {
    match rollout_overrides(&RolloutSettings::default(), &object(v.clone())) {
        Ok(s) => panic!("{v} was accepted: {s:?}"),
        Err(e) => e,
    }
}

/// A base as a service's file would give it.
fn file_base() -> RolloutSettings {
    let src = "[listener]\naddress = \"127.0.0.1:8080\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]\n[service.rollout]\nsteps = [10, 50, 100]\nstep_interval = \"2m\"\nsmoke = [{ path = \"/healthz\", status = 200 }]\n[service.rollout.analysis]\nmin_requests = 100\nmax_p99 = \"1s\"\n";
    parse(src, Path::new("sy.toml")).unwrap().services[0].rollout.clone()
}

#[test]
fn an_empty_object_returns_the_base() {
    let base = file_base();
    assert_eq!(rollout_overrides(&base, &Map::new()), Ok(base.clone()));
    assert_eq!(rollout_overrides(&base, &object(json!({ "analysis": {} }))), Ok(base));
}

#[test]
fn overrides_apply_over_the_base_and_keep_the_rest() {
    let base = file_base();
    let got = rollout_overrides(
        &base,
        &object(json!({
            "steps": [5, 25, 100],
            "warmup": "0s",
            "on_inconclusive": "abort",
            "smoke": [],
            "analysis": { "max_error_rate": 0.02, "max_latency_ratio": 2, "fast_fail_errors": 0 },
        })),
    )
    .unwrap();
    let want = RolloutSettings {
        steps: [5, 25, 100].into_iter().map(|w| Weight(w * 100)).collect(),
        on_inconclusive: OnInconclusive::Abort,
        smoke: Vec::new(),
        analysis: Analysis {
            max_error_rate: 0.02,
            max_latency_ratio: 2.0,
            fast_fail_errors: 0,
            ..base.analysis.clone()
        },
        ..base.clone()
    };
    assert_eq!(got, want);
    assert_eq!(got.step_interval, Duration::from_secs(120), "the file's value stands");
    assert_eq!(got.analysis.min_requests, 100, "the file's value stands");
    assert_eq!(got.analysis.max_p99, Some(Duration::from_secs(1)), "the file's value stands");
    let decimals = rollout_overrides(&base, &object(json!({ "steps": [0.5, 12.25, 100.0] }))).unwrap();
    assert_eq!(decimals.steps, [Weight(50), Weight(1225), Weight::FULL]);
}

#[test]
fn every_rule_of_the_file_is_refused_naming_the_field() {
    let cases = [
        (json!({ "steps": [] }), "`steps` must not be empty (the last step is 100)"),
        (json!({ "steps": [50, 25, 100] }), "`steps` must be strictly ascending, found 25 after 50"),
        (json!({ "steps": [0, 100] }), "`steps`: a step must be above 0"),
        (json!({ "steps": [5, 50] }), "`steps` must end at 100, found 50"),
        (json!({ "steps": [1.005, 100] }), "`steps`: weight 1.005 has more than two decimals"),
        (json!({ "steps": "5,100" }), "`steps` must be an array, found string"),
        (json!({ "step_interval": "0s" }), "`step_interval` must be longer than 0"),
        (json!({ "interval": "0s" }), "`interval` must be longer than 0"),
        (json!({ "max_step_duration": "0s" }), "`max_step_duration` must be longer than 0"),
        (json!({ "interval": 5 }), "`interval` must be a string, found integer"),
        (
            json!({ "max_step_duration": "1m", "step_interval": "5m" }),
            "`max_step_duration` (1m) must be at least `step_interval` (5m)",
        ),
        (
            json!({ "on_inconclusive": "wait" }),
            "`on_inconclusive` must be \"pause\", \"abort\" or \"continue\", found \"wait\"",
        ),
        (json!({ "failure_limit": 0 }), "`failure_limit` must be at least 1, found 0"),
        (
            json!({ "smoke": [{ "path": "x", "status": 200 }] }),
            "`smoke[0].path` must be an absolute request path, found \"x\"",
        ),
        (
            json!({ "smoke": [{ "path": "/x", "status": 200 }, { "path": "/y", "status": 700 }] }),
            "`smoke[1].status` must be between 100 and 599, found 700",
        ),
        (json!({ "smoke": [{ "path": "/x" }] }), "missing key `smoke[0].status`"),
        (json!({ "smoke": [{ "path": "/x", "status": 200, "method": "GET" }] }), "unknown key `smoke[0].method`"),
        (json!({ "analysis": { "min_requests": 0 } }), "`analysis.min_requests` must be at least 1, found 0"),
        (json!({ "analysis": { "max_error_rate": 2 } }), "`analysis.max_error_rate` must be between 0 and 1, found 2"),
        (
            json!({ "analysis": { "max_error_increase": -0.5 } }),
            "`analysis.max_error_increase` must be between 0 and 1, found -0.5",
        ),
        (
            json!({ "analysis": { "max_latency_ratio": 0.5 } }),
            "`analysis.max_latency_ratio` must be at least 1, found 0.5",
        ),
        (json!({ "analysis": { "max_p99": "0ms" } }), "`analysis.max_p99` must be longer than 0"),
        (json!({ "analysis": { "fast_fail_errors": -1 } }), "`analysis.fast_fail_errors` must be at least 0, found -1"),
        (json!({ "analysis": { "max_error_rate": "1%" } }), "`analysis.max_error_rate` must be a number, found string"),
        (json!({ "analysis": { "foo": 1 } }), "unknown key `analysis.foo`"),
        (json!({ "analysis": 5 }), "`analysis` must be an object, found integer"),
        (json!({ "smoke": ["/x"] }), "`smoke` must be an object, found string"),
        (json!({ "pool": "green" }), "unknown key `pool`"),
    ];
    for (body, want) in cases {
        assert_eq!(refused(body.clone()), want, "for {body}");
    }
}

#[test]
fn against_the_base_max_step_duration_still_bounds_step_interval() {
    let e = rollout_overrides(&file_base(), &object(json!({ "max_step_duration": "1m" }))).unwrap_err();
    assert_eq!(e, "`max_step_duration` (1m) must be at least `step_interval` (2m)");
}

#[test]
fn null_is_refused_naming_the_field_and_every_problem_is_joined() {
    assert_eq!(
        refused(json!({ "analysis": { "max_p99": null } })),
        "`analysis.max_p99` must not be null (leave it out to keep the service's setting)"
    );
    let e = refused(json!({ "smoke": [{ "path": null, "status": 200 }], "failure_limit": 0, "warmup": "1q" }));
    let parts: Vec<&str> = e.splitn(3, "; ").collect();
    assert_eq!(parts.len(), 3, "{e}");
    assert_eq!(parts[0], "`smoke[0].path` must not be null (leave it out to keep the service's setting)");
    assert_eq!(parts[1], "`failure_limit` must be at least 1, found 0");
    assert!(parts[2].starts_with("`warmup`: invalid duration \"1q\" (unknown time unit \"q\""), "{e}");
}

#[test]
fn keys_and_strings_cannot_break_out_of_their_toml() {
    assert_eq!(refused(json!({ "steps = [100]\nx": 1 })), "unknown key `steps = [100]\\nx`");
    assert_eq!(refused(json!({ "a\"b\\": 1 })), "unknown key `a\"b\\`");
    assert_eq!(
        refused(json!({ "on_inconclusive": "pause\"\nwarmup = \"1s" })),
        "`on_inconclusive` must be \"pause\", \"abort\" or \"continue\", found \"pause\"\\nwarmup = \"1s\""
    );
    assert_eq!(refused(json!({ "": 1 })), "unknown key ``");
    assert_eq!(
        refused(json!({ "a\nb": null })),
        "`a\\nb` must not be null (leave it out to keep the service's setting)",
        "one line, like every message"
    );
}

#[test]
fn deep_nesting_and_huge_numbers_are_refused_cleanly() {
    assert_eq!(refused(json!({ "smoke": [[[[{ "path": "/" }]]]] })), "`smoke[0][0][0][0]` is nested too deeply");
    assert_eq!(refused(json!({ "failure_limit": u64::MAX })), "`failure_limit` is out of range");
    let big = object(json!({ "analysis": { "max_latency_ratio": 1e300 }, "steps": [1e-5, 100] }));
    assert_eq!(
        rollout_overrides(&RolloutSettings::default(), &big).unwrap_err(),
        "`steps`: weight 0.00001 has more than two decimals"
    );
}

#[test]
fn rollout_durations_longer_than_30_days_are_refused_naming_the_field() {
    let base = RolloutSettings::default();
    for (json, field) in [
        (r#"{"step_interval": "10000d", "max_step_duration": "20000d"}"#, "`step_interval` must be at most 30d"),
        (r#"{"warmup": "31d"}"#, "`warmup` must be at most 30d"),
        (r#"{"analysis": {"max_p99": "365d"}}"#, "`analysis.max_p99` must be at most 30d"),
    ] {
        let map: Map<String, Value> = serde_json::from_str(json).unwrap();
        let e = rollout_overrides(&base, &map).unwrap_err();
        assert!(e.contains(field), "{json}: {e}");
    }
    let ok: Map<String, Value> =
        serde_json::from_str(r#"{"step_interval": "30d", "max_step_duration": "30d"}"#).unwrap();
    assert_eq!(rollout_overrides(&base, &ok).unwrap().step_interval, Duration::from_secs(30 * 86_400));
}
