//! SPEC §4: web pages of other sites cannot drive the admin API, token or not.
//! A foreign Origin → 403, a Host that is not an IP, localhost or a name in
//! `[admin] hosts` → 403 (DNS rebinding), a POST body that is not declared JSON → 415.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::{Admin, start};
use http::StatusCode;
use serde_json::Value;
use switchyard_admin::Limits;

const SWITCH: &str = "/v1/services/shop/switch";
const GREEN: &[u8] = br#"{"pool":"green"}"#;

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_else(|| panic!("no error string in {v}"))
}

async fn api() -> Admin {
    start(Limits::default(), "").await
}

#[tokio::test]
async fn post_body_must_be_declared_json() {
    let a = api().await;
    // What `fetch(url, {mode: "no-cors", method: "POST", body: "{...}"})` sends.
    for ct in [Some(&b"text/plain;charset=UTF-8"[..]), Some(b"application/x-www-form-urlencoded"), None] {
        let headers: Vec<(&str, &[u8])> = ct.map(|c| ("content-type", c)).into_iter().collect();
        let (s, v) = a.send("POST", SWITCH, &headers, GREEN).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}: {v}");
        assert!(error_of(&v).contains("Content-Type: application/json"), "{v}");
    }
    assert_eq!(a.active().await, "blue", "nothing was switched");
    // Checked before auth: a page does not learn whether a token is needed.
    let (s, _) =
        a.send("POST", SWITCH, &[("authorization", b"Bearer wrong"), ("content-type", b"text/plain")], GREEN).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Parameters and case are fine.
    let (s, v) = a.send("POST", SWITCH, &[("content-type", b"Application/JSON; charset=utf-8")], GREEN).await;
    assert_eq!((s, v["active"].as_str()), (StatusCode::OK, Some("green")), "{v}");
    // A POST without a body may omit it.
    let (s, v) = a.send("POST", "/v1/services/shop/rollback", &[], b"").await;
    assert_eq!((s, v["active"].as_str()), (StatusCode::OK, Some("blue")), "{v}");
    let (s, v) = a.send("POST", "/v1/reload", &[], b"").await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn foreign_origin_is_refused_everywhere() {
    let a = api().await;
    let own = format!("http://{}", a.addr);
    for origin in ["http://evil.example", "null", &own.replace("http:", "https:"), "http://127.0.0.1:1"] {
        for (method, path, body) in
            [("GET", "/v1/services", &b""[..]), ("POST", SWITCH, GREEN), ("GET", "/healthz", b"")]
        {
            let headers = [("origin", origin.as_bytes()), ("content-type", b"application/json")];
            let (s, v) = a.send(method, path, &headers, body).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{origin} {path}: {v}");
            assert!(error_of(&v).contains("Origin"), "{v}");
        }
    }
    assert_eq!(a.active().await, "blue");
    // The admin API's own origin (a page it serves itself) is fine, in any case.
    let own_upper = own.to_uppercase();
    for origin in [own.as_str(), own_upper.as_str()] {
        let (s, v) = a.send("GET", "/v1/services/shop", &[("origin", origin.as_bytes())], b"").await;
        assert_eq!(s, StatusCode::OK, "{origin}: {v}");
    }
}

#[tokio::test]
async fn host_must_be_an_ip_localhost_or_listed() {
    let a = api().await;
    let port = a.addr.port();
    let rebound = format!("attacker.example:{port}");
    let (s, v) = a.send("GET", "/v1/services", &[("host", rebound.as_bytes())], b"").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(error_of(&v).contains("[admin] hosts"), "{v}");
    let headers = [("host", rebound.as_bytes()), ("content-type", &b"application/json"[..])];
    assert_eq!(a.send("POST", SWITCH, &headers, GREEN).await.0, StatusCode::FORBIDDEN);
    assert_eq!(a.active().await, "blue");
    // Prometheus scrapes by name: /metrics and /healthz are exempt.
    assert_eq!(a.send("GET", "/healthz", &[("host", rebound.as_bytes())], b"").await.0, StatusCode::OK);
    let (s, v) = a.send("GET", "/metrics", &[("host", rebound.as_bytes())], b"").await;
    assert!(error_of(&v).contains("not enabled"), "reached the metrics endpoint: {s} {v}");
    for ok in [format!("127.0.0.1:{port}"), "127.0.0.1".into(), format!("LocalHost:{port}"), "[::1]:9".into()] {
        let (s, v) = a.send("GET", "/v1/services", &[("host", ok.as_bytes())], b"").await;
        assert_eq!(s, StatusCode::OK, "{ok}: {v}");
    }
    for bad in ["::1", "127.0.0.1:x", "localhost.attacker.example"] {
        assert_eq!(
            a.send("GET", "/v1/services", &[("host", bad.as_bytes())], b"").await.0,
            StatusCode::FORBIDDEN,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn admin_hosts_come_from_the_live_config() {
    let a = start(Limits::default(), "hosts = [\"proxy-1.internal\"]").await;
    let port = a.addr.port();
    let name = |n: &str| format!("{n}:{port}");
    let listed = name("PROXY-1.internal");
    let (s, v) = a.send("GET", "/v1/services", &[("host", listed.as_bytes())], b"").await;
    assert_eq!(s, StatusCode::OK, "listed names in any case: {v}");
    let other = name("proxy-2.internal");
    assert_eq!(a.send("GET", "/v1/services", &[("host", other.as_bytes())], b"").await.0, StatusCode::FORBIDDEN);
    // Own origin under a listed name.
    let origin = format!("http://{listed}");
    let headers = [("host", listed.as_bytes()), ("origin", origin.as_bytes())];
    assert_eq!(a.send("GET", "/v1/services", &headers, b"").await.0, StatusCode::OK);

    // A reload that lists proxy-2 instead: the next request sees it.
    let path = a.dir.path().join("sy.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace("proxy-1.internal", "proxy-2.internal");
    std::fs::write(&path, text).unwrap();
    let (s, v) = a.send("POST", "/v1/reload", &[], b"").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(a.send("GET", "/v1/services", &[("host", other.as_bytes())], b"").await.0, StatusCode::OK);
    assert_eq!(a.send("GET", "/v1/services", &[("host", listed.as_bytes())], b"").await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn http10_without_host_is_served() {
    let a = api().await;
    let req = format!("GET /v1/services/shop HTTP/1.0\r\nAuthorization: Bearer {}\r\n\r\n", common::OP);
    let answer = switchyard_test_support::raw_exchange(a.addr, req.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"active\":\"blue\""), "{answer}");
}

#[tokio::test]
async fn an_https_origin_counts_as_own_only_for_a_listed_name() {
    // The dashboard behind a TLS-terminating proxy that keeps Host: its POSTs say
    // `Origin: https://NAME`. That is the API's own page only for a name the
    // operator listed; for an IP or localhost the listener is plain HTTP.
    let a = start(Limits::default(), "hosts = [\"admin.example\"]").await;
    let headers =
        [("host", &b"admin.example"[..]), ("origin", b"https://admin.example"), ("content-type", b"application/json")];
    let (s, v) = a.send("POST", SWITCH, &headers, GREEN).await;
    assert_eq!((s, v["active"].as_str()), (StatusCode::OK, Some("green")), "{v}");
    for (host, origin) in [
        ("admin.example", "https://other.example"),
        ("other.example", "https://other.example"),
        ("localhost", "https://localhost"),
    ] {
        let headers = [("host", host.as_bytes()), ("origin", origin.as_bytes()), ("content-type", b"application/json")];
        let (s, v) = a.send("POST", "/v1/services/shop/rollback", &headers, b"{}").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{host} {origin}: {v}");
    }
    assert_eq!(a.active().await, "green");
}
