//! The admin API over real HTTP: every call, its success and its error codes.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::{Admin, OP, start_with_files};
use http::StatusCode;
use serde_json::{Value, json};
use switchyard_admin::Limits;

const VIEW: &str = "view-secret";
const CI: &str = "ci-secret";

/// A viewer token `dash` (file `view`) and an operator token `ci` (file `ci`) beside `op`.
const NAMED_TOKENS: &str = "[[admin.tokens]]\nname = \"dash\"\nfile = \"view\"\nrole = \"viewer\"\n[[admin.tokens]]\nname = \"ci\"\nfile = \"ci\"";

async fn start() -> Admin {
    start_with_files(Limits::default(), NAMED_TOKENS, &[("view", VIEW), ("ci", CI)]).await
}

impl Admin {
    /// `method path` with `body` (as JSON when not empty), the bearer `token` and
    /// `If-Match` when given; answers the status, the body as JSON and the ETag.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
        if_match: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if let Some(b) = &bearer {
            headers.push(("authorization", b.as_bytes()));
        }
        if let Some(v) = if_match {
            headers.push(("if-match", v.as_bytes()));
        }
        if !body.is_empty() {
            headers.push(("content-type", b"application/json"));
        }
        let (status, value, headers) = self.exact(method, path, &headers, body.as_bytes()).await.unwrap();
        let etag = headers.get("etag").map(|v| v.to_str().unwrap().to_owned());
        (status, value, etag)
    }

    /// A JSON POST with the operator token.
    async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value, Option<String>) {
        self.call("POST", path, Some(OP), &body.to_string(), None).await
    }
}

#[tokio::test]
async fn reads_need_a_known_token_and_show_the_service() {
    let api = start().await;
    assert_eq!(api.call("GET", "/healthz", None, "", None).await.0, StatusCode::OK);
    assert_eq!(api.call("GET", "/v1/services", None, "", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.call("GET", "/v1/services", Some("wrong"), "", None).await.0, StatusCode::UNAUTHORIZED);
    let (s, all, _) = api.call("GET", "/v1/services", Some(VIEW), "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(all["generation"], 1);
    let (s, svc, etag) = api.call("GET", "/v1/services/shop", Some(VIEW), "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(etag.as_deref(), Some("\"1\""));
    assert_eq!(svc["active"], "blue");
    assert_eq!(svc["traffic"], json!({"blue": 100, "green": 0}));
    assert_eq!(svc["pools"]["blue"]["healthy"], 1);
    assert_eq!(svc["pools"]["blue"]["backends"][0]["healthy"], true);
    let (s, e, _) = api.call("GET", "/v1/services/nope", Some(VIEW), "", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["error"], "unknown service \"nope\"");
}

#[tokio::test]
async fn viewer_cannot_switch_and_operator_can() {
    let api = start().await;
    let (s, e, _) = api.call("POST", "/v1/services/shop/switch", Some(VIEW), r#"{"pool":"green"}"#, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(e["error"].as_str().unwrap().contains("read-only"));
    let (s, svc, etag) = api.post_json("/v1/services/shop/switch", json!({"pool": "green", "reason": "cutover"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!((svc["active"].as_str(), svc["version"].as_u64()), (Some("green"), Some(2)));
    assert_eq!(etag.as_deref(), Some("\"2\""));
    let (_, h, _) = api.call("GET", "/v1/services/shop/history", Some(VIEW), "", None).await;
    let ev = &h["events"][0];
    assert_eq!(
        (ev["kind"].as_str(), ev["actor"].as_str(), ev["reason"].as_str()),
        (Some("switch"), Some("api"), Some("cutover"))
    );
    assert_eq!(ev["from"], json!({"blue": 100, "green": 0}));
    assert!(ev["at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn named_token_is_the_history_actor() {
    let api = start().await;
    let body = r#"{"weights": {"blue": 90, "green": 10}, "reason": "canary"}"#;
    let (s, v, _) = api.call("POST", "/v1/services/shop/weights", Some(CI), body, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["active"], Value::Null);
    assert_eq!(v["traffic"], json!({"blue": 90, "green": 10}));
    let (_, h, _) = api.call("GET", "/v1/services/shop/history", Some(OP), "", None).await;
    assert_eq!((h["events"][0]["actor"].as_str(), h["events"][0]["kind"].as_str()), (Some("ci"), Some("weights")));
}

#[tokio::test]
async fn bad_requests_get_400_with_a_message() {
    let api = start().await;
    for (path, body) in [
        ("/v1/services/shop/switch", "{not json"),
        ("/v1/services/shop/switch", r#"{"reason":"no pool"}"#),
        ("/v1/services/shop/switch", r#"{"pool": 5}"#),
        ("/v1/services/shop/switch", r#"{"pool":"green","colour":"x"}"#),
        ("/v1/services/shop/weights", r#"{"weights":{"blue":60,"green":30}}"#),
        ("/v1/services/shop/weights", r#"{"weights":{"blue":-10,"green":110}}"#),
        ("/v1/services/shop/weights", r#"{"weights":{"blue":33.333,"green":66.667}}"#),
    ] {
        let (s, e, _) = api.call("POST", path, Some(OP), body, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert!(e["error"].is_string(), "{e}");
    }
    let (s, _, _) = api.call("POST", "/v1/services/shop/switch", Some(OP), r#"{"pool":"green"}"#, Some("abc")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v, _) = api.call("GET", "/v1/services/shop", Some(OP), "", None).await;
    assert_eq!((s, v["version"].as_u64()), (StatusCode::OK, Some(1)));
}

#[tokio::test]
async fn unknown_pool_404_nothing_to_roll_back_409_stale_if_match_412() {
    let api = start().await;
    let (s, e, _) = api.post_json("/v1/services/shop/switch", json!({"pool": "red"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(e["error"].as_str().unwrap().contains("\"red\""));
    assert_eq!(api.post_json("/v1/services/nope/switch", json!({"pool": "green"})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.call("POST", "/v1/services/shop/rollback", Some(OP), "", None).await.0, StatusCode::CONFLICT);
    let (s, _, _) = api.call("POST", "/v1/services/shop/switch", Some(OP), r#"{"pool":"green"}"#, Some("\"7\"")).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let (s, _, _) = api.call("POST", "/v1/services/shop/switch", Some(OP), r#"{"pool":"green"}"#, Some("\"1\"")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v, _) = api.call("POST", "/v1/services/shop/rollback", Some(OP), r#"{"reason":"bad deploy"}"#, None).await;
    assert_eq!((s, v["active"].as_str()), (StatusCode::OK, Some("blue")));
}

#[tokio::test]
async fn reload_answers_generation_or_422_with_every_problem() {
    let api = start().await;
    let (s, v, _) = api.post_json("/v1/reload", json!({})).await;
    assert_eq!((s, v["generation"].as_u64()), (StatusCode::OK, Some(2)));
    let path = api.dir.path().join("sy.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace("active = \"blue\"", "active = \"red\"").replace("[state]", "bogus = 1\n[state]"),
    )
    .unwrap();
    let (s, v, _) = api.post_json("/v1/reload", json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let problems: Vec<&str> = v["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("unknown key `bogus`")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("unknown pool \"red\"")), "{problems:?}");
    let (_, all, _) = api.call("GET", "/v1/services", Some(OP), "", None).await;
    assert_eq!(all["generation"], 2);
    assert_eq!(all["last_reload"]["ok"], false);
}

#[tokio::test]
async fn unknown_endpoints_and_methods() {
    let api = start().await;
    assert_eq!(api.call("GET", "/v2/x", Some(OP), "", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.call("DELETE", "/v1/services/shop", Some(OP), "", None).await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(api.post_json("/v1/services/shop/explode", json!({})).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reload_rotates_tokens_and_an_empty_token_file_refuses_the_reload() {
    let api = start().await;
    std::fs::write(api.dir.path().join("op"), "rotated-secret").unwrap();
    let (s, v, _) = api.call("POST", "/v1/reload", Some(OP), "", None).await;
    assert_eq!((s, v["generation"].as_u64()), (StatusCode::OK, Some(2)));
    // The reload answer comes after the new config is published; the token swap
    // follows on the admin's watcher task, so look until it lands.
    switchyard_test_support::assert_eventually!(
        api.call("GET", "/v1/services", Some(OP), "", None).await.0 == StatusCode::UNAUTHORIZED,
        "old operator token still accepted"
    );
    assert_eq!(api.call("GET", "/v1/services", Some("rotated-secret"), "", None).await.0, StatusCode::OK);

    // An empty token file makes the config invalid: the whole reload is refused.
    std::fs::write(api.dir.path().join("view"), "").unwrap();
    let (s, v, _) = api.call("POST", "/v1/reload", Some("rotated-secret"), "", None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["problems"][0].as_str().unwrap().contains("`file`"), "{v}");
    assert_eq!(api.call("GET", "/v1/services", Some("rotated-secret"), "", None).await.0, StatusCode::OK);
    assert_eq!(api.call("GET", "/v1/services", Some(VIEW), "", None).await.0, StatusCode::OK, "old viewer token kept");
}

#[tokio::test]
async fn drain_query_is_percent_decoded_and_unknown_or_repeated_keys_are_400() {
    let api = start().await;
    let (s, v, _) = api.call("GET", "/v1/services/shop/drain?pool=bl%75e&wait=1%30ms", Some(VIEW), "", None).await;
    assert_eq!((s, v["pool"].as_str(), v["drained"].as_bool()), (StatusCode::OK, Some("blue"), Some(true)), "{v}");
    let (s, v, _) = api.call("GET", "/v1/services/shop/drain?pool=blue&colour=red", Some(VIEW), "", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("\"colour\""), "{v}");
    let (s, v, _) = api.call("GET", "/v1/services/shop/drain?pool=blue&pool=green", Some(VIEW), "", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("pool given more than once"), "{v}");
}

#[tokio::test]
async fn a_service_says_what_a_rollback_would_restore() {
    let api = start().await;
    let (_, v, _) = api.call("GET", "/v1/services/shop", Some(OP), "", None).await;
    assert_eq!(v["rollback_to"], Value::Null, "nothing to roll back at start");
    let (_, v, _) = api.post_json("/v1/services/shop/weights", json!({"weights": {"blue": 90, "green": 10}})).await;
    assert_eq!(v["rollback_to"], json!({"blue": 100, "green": 0}));
    let (_, v, _) = api.post_json("/v1/services/shop/switch", json!({"pool": "green"})).await;
    assert_eq!(v["rollback_to"], json!({"blue": 90, "green": 10}));
    // What it promised is what a rollback does, all the way back.
    let (_, v, _) = api.post_json("/v1/services/shop/rollback", json!({})).await;
    assert_eq!(
        (v["traffic"].clone(), v["rollback_to"].clone()),
        (json!({"blue": 90, "green": 10}), json!({"blue": 100, "green": 0}))
    );
    let (_, v, _) = api.post_json("/v1/services/shop/rollback", json!({})).await;
    assert_eq!((v["traffic"].clone(), v["rollback_to"].clone()), (json!({"blue": 100, "green": 0}), Value::Null));
}
