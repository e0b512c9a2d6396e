//! Property tests of the admin API over a real socket: random bodies for every
//! POST endpoint, random drain query strings, random `If-Match`, `Origin`,
//! `Host`, `Content-Type` and `Authorization` values. The handler never panics
//! (a panic would drop the connection), every answer has a documented status,
//! and every non-2xx answer is JSON with an `error` string.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::{Admin, OP, start};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use std::collections::BTreeMap;
use switchyard_admin::Limits;

/// Cases per property: enough to find the obvious, bounded so CI stays fast.
const CASES: u32 = 256;

const DOCUMENTED: [u16; 14] = [200, 201, 400, 401, 403, 404, 405, 408, 409, 412, 415, 422, 500, 503];

/// One request to make.
#[derive(Debug, Clone)]
struct Call {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// Header-value text: visible ASCII and spaces, what a client can send.
fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,40}"
}

/// A header: mostly its benign value (`None` = absent), else a usual
/// alternative or random text, so that most calls get past the browser rules
/// and auth and reach the endpoint.
fn header(
    name: &'static str,
    benign: Option<&str>,
    usual: Vec<String>,
) -> impl Strategy<Value = Option<(&'static str, String)>> + use<> {
    prop_oneof![
        8 => Just(benign.map(String::from)),
        1 => proptest::sample::select(usual).prop_map(Some),
        1 => text().prop_map(Some),
    ]
    .prop_map(move |v| v.map(|v| (name, v)))
}

fn headers(admin: &str) -> impl Strategy<Value = Vec<(&'static str, String)>> + use<> {
    let bearer = format!("Bearer {OP}");
    (
        header(
            "content-type",
            Some("application/json"),
            vec!["application/json; charset=utf-8".into(), "text/plain".into()],
        ),
        header("origin", None, vec![format!("http://{admin}"), "null".into(), "http://evil.example".into()]),
        header("host", None, vec!["localhost".into(), "[::1]:1".into(), "rebound.example".into()]),
        header("authorization", Some(&bearer), vec!["Bearer nope".into(), bearer.to_lowercase()]),
        header("if-match", None, vec!["\"1\"".into(), "W/\"2\"".into(), "99999999999999999999999".into()]),
    )
        .prop_map(|(a, b, c, d, e)| [a, b, c, d, e].into_iter().flatten().collect())
}

/// JSON-ish values, with the API's own keys often enough to get past the first check.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(vec!["blue", "green", "red", "", "10m", "31d", "0s", "1h"]).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    let key = prop_oneof![
        3 => proptest::sample::select(vec!["pool", "weights", "reason", "force", "ttl", "blue", "green"]).prop_map(String::from),
        1 => ".{0,8}",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies shaped like the real ones, with random values, to reach the control task.
fn shaped() -> impl Strategy<Value = Value> {
    let pool = proptest::sample::select(vec!["blue", "green", "red", ""]);
    let ttl = proptest::option::of(proptest::sample::select(vec!["1s", "10m", "31d", "0s", "soon"]));
    let change = (pool.clone(), proptest::option::of(text()), proptest::option::of(any::<bool>()), ttl).prop_map(
        |(pool, reason, force, ttl)| {
            let mut v = serde_json::json!({ "pool": pool });
            if let Some(r) = reason {
                v["reason"] = r.into();
            }
            if let Some(f) = force {
                v["force"] = f.into();
            }
            if let Some(t) = ttl {
                v["ttl"] = t.into();
            }
            v
        },
    );
    let weights = (pool, prop_oneof![0..=100i64, any::<i64>()], any::<bool>()).prop_map(|(pool, w, force)| {
        serde_json::json!({ "weights": { "blue": 100i64.wrapping_sub(w), pool: w }, "force": force })
    });
    prop_oneof![change, weights]
}

fn post_calls(admin: &str) -> BoxedStrategy<Call> {
    let path = prop_oneof![
        4 => proptest::sample::select(vec!["switch", "weights", "rollback", "preview-token"])
            .prop_map(|a| format!("/v1/services/shop/{a}")),
        1 => Just("/v1/reload".to_owned()),
        1 => "[a-z%0-9._-]{0,10}".prop_map(|s| format!("/v1/services/{s}/switch")),
    ];
    let body = prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..200),
        2 => json().prop_map(|v| v.to_string().into_bytes()),
        4 => shaped().prop_map(|v| v.to_string().into_bytes()),
        1 => Just(Vec::new()),
    ];
    (path, headers(admin), body).prop_map(|(path, headers, body)| Call { method: "POST", path, headers, body }).boxed()
}

fn drain_calls(admin: &str) -> BoxedStrategy<Call> {
    let query = prop_oneof![
        "[a-zA-Z0-9=&%+._~;:-]{0,40}",
        (
            proptest::sample::select(vec!["pool", "wait", "p%6Fol", "colour", ""]),
            "[a-z%0-9]{0,6}",
            proptest::sample::select(vec!["", "&wait=", "&wait=10ms", "&pool=green", "&wait=2h", "&x"]),
            "[0-9a-z%]{0,4}",
        )
            .prop_map(|(k, v, more, tail)| format!("{k}={v}{more}{tail}")),
    ];
    (query, headers(admin))
        .prop_map(|(q, headers)| Call {
            method: "GET",
            path: format!("/v1/services/shop/drain?{q}"),
            headers,
            body: vec![],
        })
        .boxed()
}

fn check(rt: &tokio::runtime::Runtime, api: &Admin, call: Call) -> Result<(), TestCaseError> {
    let headers: Vec<(&str, &[u8])> = call.headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let (status, body, _) = rt
        .block_on(api.exact(call.method, &call.path, &headers, &call.body))
        .map_err(|e| TestCaseError::fail(format!("no answer (did the handler panic?): {e}")))?;
    prop_assert!(DOCUMENTED.contains(&status.as_u16()), "undocumented status {status}: {body}");
    if !status.is_success() {
        prop_assert!(body["error"].is_string(), "{status} without an error string: {body}");
    }
    Ok(())
}

fn run(strategy: fn(&str) -> BoxedStrategy<Call>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let api = rt.block_on(start(Limits::default(), ""));
    let strategy = strategy(&api.addr.to_string());
    let config = Config { cases: CASES, failure_persistence: None, ..Config::default() };
    let result = TestRunner::new(config).run(&strategy, |call| check(&rt, &api, call));
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn random_posts_get_documented_answers() {
    run(post_calls);
}

#[test]
fn random_drain_queries_get_documented_answers() {
    run(drain_calls);
}
