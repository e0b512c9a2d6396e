//! `GET /v1/services/{svc}/stats` over a real control thread (whose sampler ticks
//! every second), a real proxy on the same table and real upstreams: shape, zeros
//! when idle, window and step parsing, 404, and a request made through the proxy
//! showing up once the sampler has taken the next sample (awaited on its ticks).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use switchyard_admin::{AdminState, Limits, Tokens};
use switchyard_control::{ControlHandle, Controller, spawn};
use switchyard_proxy::ServerOptions;
use switchyard_test_support::{Conn, Upstream};
use tokio::net::TcpListener;

struct Setup {
    admin: SocketAddr,
    proxy: SocketAddr,
    control: ControlHandle,
    _dir: tempfile::TempDir,
    _ups: (Upstream, Upstream),
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    std::fs::write(dir.path().join("op"), common::OP).unwrap();
    let path = dir.path().join("sy.toml");
    std::fs::write(&path, common::config_text(&b.address(), &g.address(), "")).unwrap();
    let config = switchyard_config::load(&path).unwrap();
    let tokens = Tokens::load(&config.admin, None).unwrap();
    let opts = ServerOptions::from_listener(&config.listener);
    let (controller, router) = Controller::start(config, false).unwrap();
    let control = spawn(controller);
    let state = Arc::new(AdminState {
        control: control.clone(),
        tokens: arc_swap::ArcSwap::from_pointee(tokens),
        router: router.clone(),
        metrics: None,
        cluster: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = listener.local_addr().unwrap();
    tokio::spawn(switchyard_admin::serve_with(listener, state, None, Limits::default(), std::future::pending()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    tokio::spawn(switchyard_proxy::serve(listener, router, opts, std::future::pending()));
    Setup { admin, proxy, control, _dir: dir, _ups: (b, g) }
}

impl Setup {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = Request::get(format!("http://{}{path}", self.admin))
            .header("authorization", format!("Bearer {}", common::OP))
            .body(Full::default())
            .unwrap();
        let resp = client.request(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// Waits until the sampler has taken a sample that began after this call.
    async fn next_sample(&self) {
        let mut ticks = self.control.ticks();
        let seen = *ticks.borrow_and_update();
        // Tick `seen + 1` may have been sampling already; `seen + 2` began after.
        ticks.wait_for(|t| *t >= seen + 2).await.unwrap();
    }
}

const FIELDS: [&str; 8] = ["requests", "rps", "errors", "error_rate", "p50_ms", "p90_ms", "p99_ms", "inflight"];

#[tokio::test]
async fn stats_shape_errors_and_live_requests() {
    let s = setup().await;

    // Idle: every pool listed, zeros (p's too), no series without a step.
    let (status, v) = s.get("/v1/services/shop/stats").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["window_s"], 60);
    let pools = v["pools"].as_object().unwrap();
    assert_eq!(pools.keys().collect::<Vec<_>>(), ["blue", "green"]);
    for (name, p) in pools {
        for f in FIELDS {
            assert_eq!(p[f].as_f64(), Some(0.0), "{name}.{f} in {v}");
        }
        assert!(p.get("series").is_none());
    }

    // Refusals: 400 naming the parameter, 404 for an unknown service.
    for (query, names) in [
        ("window=0s", "window"),
        ("window=16m", "window"),
        ("window=a+while", "window"),
        ("window=60s&step=2m", "step"),
        ("step=0s", "step"),
        ("colour=blue", "colour"),
    ] {
        let (status, v) = s.get(&format!("/v1/services/shop/stats?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert!(v["error"].as_str().unwrap().contains(names), "{query}: {v}");
    }
    let (status, v) = s.get("/v1/services/nope/stats").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("nope"), "{v}");

    // Requests through the proxy show up after the next sample.
    let mut c = Conn::open(s.proxy).await;
    for path in ["/", "/", "/", "/status/503"] {
        c.get("shop", path).await;
    }
    s.next_sample().await;
    let (status, v) = s.get("/v1/services/shop/stats?window=10s&step=5s").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["window_s"], 10);
    let blue = &v["pools"]["blue"];
    assert_eq!((blue["requests"].as_u64(), blue["errors"].as_u64()), (Some(4), Some(1)), "{v}");
    assert_eq!(blue["rps"].as_f64(), Some(0.4));
    assert_eq!(blue["error_rate"].as_f64(), Some(0.25));
    let (p50, p99) = (blue["p50_ms"].as_f64().unwrap(), blue["p99_ms"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= p99 && p99 < 5000.0, "{v}");
    assert_eq!(blue["inflight"], 0);
    let series = blue["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{v}");
    assert_eq!(series.iter().map(|p| p["requests"].as_u64().unwrap()).sum::<u64>(), 4);
    assert_eq!(series.iter().map(|p| p["errors"].as_u64().unwrap()).sum::<u64>(), 1);
    assert_eq!(series[1]["t"].as_u64().unwrap() - series[0]["t"].as_u64().unwrap(), 5);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(series[1]["t"].as_u64().unwrap().abs_diff(now) <= 2, "{v}");
    let green = &v["pools"]["green"];
    assert_eq!(green["requests"], 0);
    assert_eq!(green["series"].as_array().unwrap().len(), 2);
    assert!(green["series"].as_array().unwrap().iter().all(|p| p["requests"] == 0 && p["p99_ms"] == 0.0));

    // A one-second window right after a quiet sample is empty again.
    s.next_sample().await;
    let (_, v) = s.get("/v1/services/shop/stats?window=1s").await;
    assert_eq!(v["pools"]["blue"]["requests"], 0, "{v}");
}
