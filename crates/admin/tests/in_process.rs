//! Health checks, the health gate, passive ejection, draining and preview tokens, in process:
//! real upstreams, the proxy, the control thread and the admin API together.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use switchyard_admin::{AdminState, Tokens};
use switchyard_control::{Controller, spawn};
use switchyard_proxy::{Router, ServerOptions};
use switchyard_test_support::{Conn, Upstream, assert_eventually};
use tokio::net::TcpListener;

struct Stack {
    dir: std::path::PathBuf,
    proxy: SocketAddr,
    admin: SocketAddr,
    router: Router,
    client: Client<HttpConnector, Full<Bytes>>,
    _dir: tempfile::TempDir,
}

fn q(v: &[String]) -> String {
    v.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ")
}

async fn stack(blue: &[String], green: &[String], extra: &str) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"state.json\"\n[[service]]\nname = \"shop\"\n{extra}\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [{}]\n[service.pools.green]\nbackends = [{}]\n",
        q(blue),
        q(green)
    );
    let path = dir.path().join("sy.toml");
    std::fs::write(&path, text).unwrap();
    let config = switchyard_config::load(&path).unwrap();
    let (controller, router) = Controller::start(config.clone(), false).unwrap();
    let state = Arc::new(AdminState {
        control: spawn(controller),
        tokens: arc_swap::ArcSwap::from_pointee(Tokens::open()),
        router: router.clone(),
        metrics: None,
        cluster: None,
    });
    let admin_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (admin, proxy) = (admin_l.local_addr().unwrap(), proxy_l.local_addr().unwrap());
    tokio::spawn(switchyard_admin::serve(admin_l, state, None, std::future::pending()));
    let opts = ServerOptions::from_listener(&config.listener);
    tokio::spawn(switchyard_proxy::serve(proxy_l, router.clone(), opts, std::future::pending()));
    Stack {
        dir: dir.path().to_owned(),
        proxy,
        admin,
        router,
        client: Client::builder(TokioExecutor::new()).build_http(),
        _dir: dir,
    }
}

impl Stack {
    async fn call(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.admin))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn healthy(&self, pool: &str, backend: &str) -> bool {
        let t = self.router.load();
        let p = t.service("shop").unwrap().pool(pool).unwrap();
        p.backends.iter().find(|b| b.address() == backend).unwrap().is_healthy()
    }
}

const FAST_HEALTH: &str = "[service.health]\npath = \"/healthz\"\ninterval = \"50ms\"\ntimeout = \"200ms\"\nhealthy_threshold = 1\nunhealthy_threshold = 2";

#[tokio::test]
async fn stopped_backend_is_marked_down_avoided_and_comes_back() {
    let (b1, b2, g) =
        (Upstream::spawn("blue-1").await, Upstream::spawn("blue-2").await, Upstream::spawn("green").await);
    let s = stack(&[b1.address(), b2.address()], &[g.address()], FAST_HEALTH).await;
    let addr = b1.addr;
    b1.stop();
    assert_eventually!(!s.healthy("blue", &addr.to_string()), "blue-1 not marked down");
    let (_, v) = s.call("GET", "/v1/services/shop", json!({})).await;
    assert_eq!(v["pools"]["blue"]["healthy"], 1);
    let mut c = Conn::open(s.proxy).await;
    for _ in 0..30 {
        assert_eq!(c.get("x", "/").await, (StatusCode::OK, "blue-2".into()));
    }
    let again = Upstream::serve("blue-1", TcpListener::bind(addr).await.unwrap());
    assert_eventually!(s.healthy("blue", &addr.to_string()), "blue-1 not back");
    let mut seen = false;
    for _ in 0..100 {
        seen |= c.get("x", "/").await.1 == "blue-1";
    }
    assert!(seen && again.hits() > 0, "blue-1 gets traffic again");
}

#[tokio::test]
async fn whole_pool_down_answers_503_naming_service_and_pool() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let s = stack(&[b.address()], &[g.address()], FAST_HEALTH).await;
    b.stop();
    assert_eventually!(!s.healthy("blue", &b.address()), "blue not marked down");
    let (status, body) = Conn::open(s.proxy).await.get("x", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("service \"shop\" pool \"blue\""), "{body}");
}

#[tokio::test]
async fn gate_refuses_switch_to_a_down_pool_unless_forced() {
    let b = Upstream::spawn("blue").await;
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    let s = stack(&[b.address()], std::slice::from_ref(&dead), FAST_HEALTH).await;
    assert_eventually!(!s.healthy("green", &dead), "green not marked down");
    let (status, e) = s.call("POST", "/v1/services/shop/switch", json!({"pool": "green"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(e["error"].as_str().unwrap().contains("pool \"green\" of service \"shop\" has 0 healthy"), "{e}");
    let (_, v) = s.call("GET", "/v1/services/shop", json!({})).await;
    assert_eq!((v["active"].as_str(), v["version"].as_u64()), (Some("blue"), Some(1)));
    let (status, e) = s.call("POST", "/v1/services/shop/weights", json!({"weights": {"blue": 90, "green": 10}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    let (status, v) =
        s.call("POST", "/v1/services/shop/switch", json!({"pool": "green", "force": true, "reason": "hotfix"})).await;
    assert_eq!((status, v["active"].as_str()), (StatusCode::OK, Some("green")));
    let (_, h) = s.call("GET", "/v1/services/shop/history", json!({})).await;
    assert_eq!(h["events"][0]["forced"], true);
    // Leaving a down pool is never gated.
    let (status, _) = s.call("POST", "/v1/services/shop/switch", json!({"pool": "blue"})).await;
    assert_eq!(status, StatusCode::OK);
}

/// A switch opens a connection to the pool it moves traffic to before it publishes,
/// so the first request there finds one idle instead of dialling (and a busy
/// service's clients do not all dial at once).
#[tokio::test]
async fn a_switch_warms_the_pool_it_moves_traffic_to() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let s = stack(&[b.address()], &[g.address()], "").await;
    let mut conn = Conn::open(s.proxy).await;
    assert_eq!(conn.get("x", "/").await.1, "blue", "the service has a connection to blue");
    let (status, _) = s.call("POST", "/v1/services/shop/switch", json!({"pool": "green"})).await;
    assert_eq!(status, StatusCode::OK);
    let wait = std::time::Duration::from_secs(5);
    assert!(g.connected(1, wait).await, "no connection to green before any request went there");
    assert_eq!(g.hits(), 0);
    assert_eq!(conn.get("x", "/").await.1, "green");
    assert_eq!(g.connections(), 1, "the first request to green went over the warmed connection");
    // Back to blue within the grace: its idle connection is still there and serves.
    let (status, _) = s.call("POST", "/v1/services/shop/switch", json!({"pool": "blue"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(conn.get("x", "/").await.1, "blue");
    assert_eq!(b.connections(), 1, "a quick switch back (a rollback) found blue's connection open");
    // Away and back after the grace: blue's idle connection closed (draining), and the
    // switch back opens a new one before any request goes there.
    let (status, _) = s.call("POST", "/v1/services/shop/switch", json!({"pool": "green"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eventually!(b.open_connections() == 0, "blue's idle connection closes once it lost its traffic");
    let (status, _) = s.call("POST", "/v1/services/shop/switch", json!({"pool": "blue"})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(b.connected(2, wait).await, "no new connection to blue before the request");
    assert_eq!(conn.get("x", "/").await.1, "blue");
    assert_eq!((b.connections(), b.hits()), (2, 3));
}

#[tokio::test]
async fn drain_waits_for_the_held_request_and_times_out_with_408() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let s = stack(&[b.address()], &[g.address()], "").await;
    let mut held = Conn::open(s.proxy).await;
    let pending = tokio::spawn(async move { held.get("x", "/hold").await });
    assert_eq!(b.arrived().await, "/hold");
    let (status, _) = s.call("POST", "/v1/services/shop/switch", json!({"pool": "green"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = s.call("GET", "/v1/services/shop/drain?pool=blue", json!({})).await;
    assert_eq!((status, v["inflight"].as_u64(), v["drained"].as_bool()), (StatusCode::OK, Some(1), Some(false)));
    let (status, v) = s.call("GET", "/v1/services/shop/drain?pool=blue&wait=100ms", json!({})).await;
    assert_eq!((status, v["drained"].as_bool()), (StatusCode::REQUEST_TIMEOUT, Some(false)));
    let s = Arc::new(s);
    let s2 = s.clone();
    let waiting =
        tokio::spawn(async move { s2.call("GET", "/v1/services/shop/drain?pool=blue&wait=10s", json!({})).await });
    // Still waiting while the request is held.
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    b.release(1);
    assert_eq!(pending.await.unwrap().1, "blue");
    let (status, v) = waiting.await.unwrap();
    assert_eq!((status, v["inflight"].as_u64(), v["drained"].as_bool()), (StatusCode::OK, Some(0), Some(true)));
    let (status, _) = s.call("GET", "/v1/services/shop/drain?pool=purple", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.call("GET", "/v1/services/shop/drain?pool=blue&wait=soon", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refusing_backend_is_ejected_without_client_errors() {
    let alive = Upstream::spawn("blue-alive").await;
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    let g = Upstream::spawn("green").await;
    let s = stack(&[dead.clone(), alive.address()], &[g.address()], "").await;
    let mut c = Conn::open(s.proxy).await;
    for _ in 0..50 {
        assert_eq!(c.get("x", "/").await, (StatusCode::OK, "blue-alive".into()));
    }
    assert!(!s.healthy("blue", &dead), "the refusing backend is ejected");
    let (_, v) = s.call("GET", "/v1/services/shop", json!({})).await;
    assert_eq!(v["pools"]["blue"]["healthy"], 1);
}

async fn get_with(proxy: SocketAddr, header: (&str, &str)) -> (StatusCode, String) {
    let mut c = Conn::open(proxy).await;
    let req = Request::get("/").header("host", "x").header(header.0, header.1).body(Full::default()).unwrap();
    c.send(req).await
}

#[tokio::test]
async fn preview_token_reaches_green_while_all_traffic_is_blue() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let s = stack(&[b.address()], &[g.address()], "").await;
    let (status, v) = s.call("POST", "/v1/services/shop/preview-token", json!({"pool": "green", "ttl": "10m"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(v["pool"], "green");
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(get_with(s.proxy, ("x-switchyard-preview", &token)).await, (StatusCode::OK, "green".into()));
    assert_eq!(
        get_with(s.proxy, ("cookie", &format!("a=1; sy_preview={token}"))).await,
        (StatusCode::OK, "green".into())
    );
    assert_eq!(Conn::open(s.proxy).await.get("x", "/").await.1, "blue");

    // Tampered, expired and other-service tokens are ignored: normal routing, no 5xx.
    let key_bytes = std::fs::read(s.dir.join("preview.key")).unwrap();
    let key = switchyard_proxy::preview::PreviewKey::new(key_bytes.trim_ascii().to_vec()).unwrap();
    let now = switchyard_proxy::preview::now();
    let tampered = token.replacen("green", "blue", 1);
    let expired = key.issue("shop", "green", now - 1);
    let other_service = key.issue("api", "green", now + 600);
    for bad in [tampered.as_str(), expired.as_str(), other_service.as_str(), "garbage"] {
        assert_eq!(get_with(s.proxy, ("x-switchyard-preview", bad)).await, (StatusCode::OK, "blue".into()), "{bad}");
    }
    // A fresh token made with the same key does work (so the key above is the real one).
    let minted = key.issue("shop", "green", now + 600);
    assert_eq!(get_with(s.proxy, ("x-switchyard-preview", &minted)).await.1, "green");
}

#[tokio::test]
async fn preview_token_requests_are_validated() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let s = stack(&[b.address()], &[g.address()], "").await;
    let (status, _) = s.call("POST", "/v1/services/shop/preview-token", json!({"pool": "red"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.call("POST", "/v1/services/shop/preview-token", json!({"pool": "green", "ttl": "31d"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s.call("POST", "/v1/services/shop/preview-token", json!({"pool": "green", "ttl": "soon"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, v) = s.call("POST", "/v1/services/shop/preview-token", json!({"pool": "green"})).await;
    assert_eq!(status, StatusCode::OK, "default ttl 1h: {v}");
}
