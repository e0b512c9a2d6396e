//! `switchyard app --fail-rate R --latency D`: the demo app misbehaving on purpose,
//! with `/healthz` kept healthy so a rollout can start.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;
use common::{App, BIN};
use http::StatusCode;
use std::process::Command;
use std::time::{Duration, Instant};
use switchyard_test_support::Conn;

#[tokio::test]
async fn fail_rate_1_fails_every_request_but_healthz() {
    let app = App::start("green-1", &["--fail-rate", "1"]);
    let mut c = Conn::open(app.addr).await;
    for _ in 0..20 {
        let (status, body) = c.get("localhost", "/").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.starts_with("green-1: injected failure"), "{body}");
    }
    assert_eq!(c.get("localhost", "/healthz").await, (StatusCode::OK, "ok\n".to_owned()));
}

#[tokio::test]
async fn fail_rate_0_fails_nothing() {
    let app = App::start("green-1", &["--fail-rate", "0"]);
    let mut c = Conn::open(app.addr).await;
    for _ in 0..20 {
        assert_eq!(c.get("localhost", "/").await, (StatusCode::OK, "green-1\n".to_owned()));
    }
}

#[tokio::test]
async fn latency_delays_every_answer_but_healthz_by_at_least_d() {
    let app = App::start("green-1", &["--latency", "300ms"]);
    let mut c = Conn::open(app.addr).await;
    for path in ["/", "/checkout"] {
        let t = Instant::now();
        assert_eq!(c.get("localhost", path).await.0, StatusCode::OK);
        assert!(t.elapsed() >= Duration::from_millis(300), "{path}: {:?}", t.elapsed());
    }
    // No lower bound to check for /healthz; it answers, and stays 200.
    assert_eq!(c.get("localhost", "/healthz").await.0, StatusCode::OK);
}

#[test]
fn a_fail_rate_outside_0_to_1_or_a_bad_latency_is_a_usage_error() {
    for bad in [&["--fail-rate", "1.5"][..], &["--fail-rate=-0.1"], &["--fail-rate", "often"], &["--latency", "soon"]] {
        let out = Command::new(BIN).args(["app", "--name", "x", "--listen", "127.0.0.1:0"]).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value"), "{bad:?}");
    }
}
