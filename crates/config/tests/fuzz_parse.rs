//! The config parser against hostile text (property tests, a bounded number of
//! cases so CI stays fast; `fuzz/` has a libFuzzer target for long campaigns).
//! Nothing may panic; every refusal is one clean `FILE:LINE:COL: message` per
//! problem pointing inside the text; everything accepted satisfies the rules.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use proptest::prelude::*;
use std::path::Path;
use switchyard_config::{ConfigError, RolloutSettings, Weight, parse, rollout_overrides};

const EXAMPLE: &str = include_str!("../../../config/switchyard.toml");

/// Pieces that are likely to land somewhere meaningful in a TOML config.
const PIECES: &[&str] = &[
    "\n",
    "=",
    "\"",
    "[",
    "]",
    "[[service]]\n",
    "[service.pools.red]\n",
    "{",
    "}",
    ",",
    "0",
    "-1",
    "100",
    "33.333",
    "1e9",
    "\"0s\"",
    "\"10MiB\"",
    "\"*\"",
    "true",
    "'",
    "#",
    "active",
    "weights",
    "backends",
    "hosts",
    "name",
    "\"127.0.0.1:0\"",
    "\"::1\"",
    "timeout",
    "[listener]\n",
    "[admin]\n",
    "tokens",
    "\u{0}",
    "\u{feff}",
    "é",
    "\t",
    "max_connections = 0\n",
    "idle = \"0s\"\n",
    "weights = { blue = 50, green = 50.5 }\n",
    "[service.rollout]\n",
    "[service.rollout.analysis]\n",
    "steps",
    "smoke",
    "\"1m\"",
    "0.5",
    "max_error_rate = 2\n",
    "step_interval = \"1h\"\n",
];

/// What every accepted rollout setting satisfies, from the file or the start call.
fn rollout_ok(r: &RolloutSettings) {
    assert!(r.steps.windows(2).all(|w| w[0] < w[1]), "{r:?}");
    assert!(r.steps.first().is_some_and(|w| *w > Weight::ZERO) && r.steps.last() == Some(&Weight::FULL), "{r:?}");
    assert!(!r.step_interval.is_zero() && !r.interval.is_zero() && r.max_step_duration >= r.step_interval, "{r:?}");
    assert!(r.failure_limit >= 1 && r.analysis.min_requests >= 1, "{r:?}");
    let a = &r.analysis;
    assert!((0.0..=1.0).contains(&a.max_error_rate) && (0.0..=1.0).contains(&a.max_error_increase), "{r:?}");
    assert!(a.max_latency_ratio.is_finite() && a.max_latency_ratio >= 1.0, "{r:?}");
    assert!(a.max_p99.is_none_or(|d| !d.is_zero()), "{r:?}");
    assert!(r.smoke.iter().all(|s| s.path.starts_with('/') && (100..=599).contains(&s.status)), "{r:?}");
}

fn check(text: &str) {
    let lines = text.split('\n').count();
    match parse(text, Path::new("fz.toml")) {
        Ok(c) => {
            assert!(!c.services.is_empty());
            for s in &c.services {
                assert!(!s.pools.is_empty());
                assert!(s.pools.iter().all(|p| !p.backends.is_empty()));
                let sum: u32 = s.traffic.0.values().map(|w| w.0).sum();
                assert_eq!(sum, Weight::FULL.0, "{text}");
                assert!(s.traffic.0.keys().all(|p| s.pool(p).is_some()));
                let t = &s.timeouts;
                assert!(!t.connect.is_zero() && !t.request.is_zero() && !t.idle.is_zero() && !t.pool_idle.is_zero());
                rollout_ok(&s.rollout);
            }
            assert!(!c.listener.header_timeout.is_zero() && !c.listener.idle_timeout.is_zero());
            assert!(c.listener.max_connections >= 1);
        }
        Err(e) => {
            let problems = match &e {
                ConfigError::Syntax { problem, .. } => vec![problem.clone()],
                ConfigError::Invalid { problems, .. } => problems.clone(),
                ConfigError::Io { .. } => panic!("no I/O here: {e}"),
            };
            assert!(!problems.is_empty());
            for p in &problems {
                assert!(p.line >= 1 && p.line <= lines + 1 && p.col >= 1, "{p:?} outside the text");
                assert!(!p.message.trim().is_empty() && !p.message.contains('\n'), "{p:?}");
            }
            for line in e.lines() {
                assert!(line.starts_with("fz.toml:"), "{line}");
            }
        }
    }
}

/// The example with random edits: a range cut out and a piece put in, a few times.
fn mutated() -> impl Strategy<Value = String> {
    let edit = (any::<prop::sample::Index>(), 0usize..40, prop::sample::select(PIECES));
    prop::collection::vec(edit, 1..6).prop_map(|edits| {
        let mut text = EXAMPLE.to_owned();
        for (at, cut, piece) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            let mut end = (i + cut).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.replace_range(i..end, piece);
        }
        text
    })
}

/// JSON values near the start call's settings: right keys, wrong types, edge numbers.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![0.0, -1.0, 0.5, 1.0, 1.25, 2.0, 12.5, 33.333, 100.0, 1e300]).prop_map(|f| json!(f)),
        any::<i64>().prop_map(|i| json!(i)),
        prop::sample::select(vec![0i64, 1, 5, 25, 50, 100, 200, 404, 600]).prop_map(|i| json!(i)),
        prop::sample::select(vec![
            "0s", "5s", "1m", "10m", "2h", "soon", "/", "/healthz", "x", "pause", "abort", "\"\n"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn json_key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "steps",
        "step_interval",
        "interval",
        "warmup",
        "max_step_duration",
        "on_inconclusive",
        "failure_limit",
        "smoke",
        "analysis",
        "path",
        "status",
        "min_requests",
        "max_error_rate",
        "max_p99",
        "max_error_increase",
        "max_latency_ratio",
        "fast_fail_errors",
        "bogus",
        "a\"b",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn start_call_overrides_never_panic_and_accepted_settings_obey_the_rules(
        body in prop::collection::vec((json_key(), json_value()), 0..6)
    ) {
        let map: serde_json::Map<String, serde_json::Value> = body.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        match rollout_overrides(&RolloutSettings::default(), &map) {
            Ok(r) => rollout_ok(&r),
            Err(e) => prop_assert!(!e.is_empty() && !e.contains('\n') && !e.contains("fz.toml"), "{e}"),
        }
    }

    #[test]
    fn mutated_examples_never_panic_and_refusals_are_located(text in mutated()) {
        check(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,400}") {
        check(&text);
    }

    #[test]
    fn durations_and_sizes_are_parsed_or_refused_cleanly(s in "[0-9a-zA-Z .]{0,24}") {
        let _ = switchyard_config::parse_duration(&s);
        let _ = switchyard_config::parse_size(&s);
    }
}

/// Found by the libFuzzer target: a name written as a multi-line string was quoted
/// into its message and split one problem over two lines of `check`'s output.
#[test]
fn problems_quoting_multi_line_values_stay_on_one_line() {
    let text = "[listener]\naddress = \"127.0.0.1:1\"\n[[service]]\nname = \"\"\"a\nb\"\"\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:2\"]\n";
    let e = parse(text, Path::new("fz.toml")).unwrap_err();
    assert_eq!(e.lines().len(), 1, "{e}");
    assert!(e.lines()[0].contains("\"a\\nb\""), "{e}");
    check(text);
}

#[test]
fn the_example_itself_is_valid() {
    check(EXAMPLE);
    let c = parse(EXAMPLE, Path::new("fz.toml")).unwrap();
    assert_ne!(c.services[0].rollout, RolloutSettings::default(), "the example shows [service.rollout]");
}
