//! One admin API on 127.0.0.1:0 over a real control thread and temp config,
//! for the API, browser-safety, listener, accept-backoff and fuzz tests.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it; helpers fail loudly

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use switchyard_admin::{AdminState, Limits, Tokens};
use switchyard_control::{Controller, spawn};
use switchyard_test_support::Upstream;
use tokio::net::TcpListener;

/// The operator token of every [`Admin`].
pub const OP: &str = "op-secret";

pub struct Admin {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub client: Client<HttpConnector, Full<Bytes>>,
    _ups: (Upstream, Upstream),
}

/// The config text; `admin_extra` goes into `[admin]`.
pub fn config_text(blue: &str, green: &str, admin_extra: &str) -> String {
    format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\ntoken_file = \"op\"\n{admin_extra}\n[state]\nfile = \"state.json\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{blue}\"]\n[service.pools.green]\nbackends = [\"{green}\"]\n"
    )
}

/// Starts the admin API with `limits` and `admin_extra` in `[admin]`.
pub async fn start(limits: Limits, admin_extra: &str) -> Admin {
    start_with_files(limits, admin_extra, &[]).await
}

/// [`start`], with more token files (name, content) beside the operator's `op`
/// for `admin_extra` to name, e.g. in `[[admin.tokens]]`.
pub async fn start_with_files(limits: Limits, admin_extra: &str, files: &[(&str, &str)]) -> Admin {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    for (name, content) in [("op", OP)].iter().chain(files) {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let path = dir.path().join("sy.toml");
    std::fs::write(&path, config_text(&b.address(), &g.address(), admin_extra)).unwrap();
    let config = switchyard_config::load(&path).unwrap();
    let tokens = Tokens::load(&config.admin, None).unwrap();
    let (controller, router) = Controller::start(config, false).unwrap();
    let state = Arc::new(AdminState {
        control: spawn(controller),
        tokens: arc_swap::ArcSwap::from_pointee(tokens),
        router,
        metrics: None,
        cluster: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(switchyard_admin::serve_with(listener, state, None, limits, std::future::pending()));
    Admin { addr, dir, client: Client::builder(TokioExecutor::new()).build_http(), _ups: (b, g) }
}

impl Admin {
    /// Sends `method path` with `headers` (the operator token unless given) and
    /// `body`; answers the status and the body as JSON (a JSON string when not JSON).
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> (StatusCode, Value) {
        let bearer = format!("Bearer {OP}");
        let mut all = headers.to_vec();
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
            all.push(("authorization", bearer.as_bytes()));
        }
        let (status, value, _) = self.exact(method, path, &all, body).await.unwrap();
        (status, value)
    }

    /// Sends exactly these headers (the client adds `Host` only when absent);
    /// answers as [`Admin::send`] plus the response headers, a client error
    /// (e.g. a closed connection) as `Err`.
    pub async fn exact(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<(StatusCode, Value, HeaderMap), String> {
        let mut req = Request::builder().method(method).uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body))).map_err(|e| format!("request: {e}"))?;
        let resp = self.client.request(req).await.map_err(|e| format!("{e:?}"))?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.map_err(|e| format!("{e:?}"))?.to_bytes();
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok((parts.status, value, parts.headers))
    }

    /// A JSON POST with the operator token.
    pub async fn post(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.send("POST", path, &[("content-type", b"application/json")], body.as_bytes()).await
    }

    /// The active pool of `shop`.
    pub async fn active(&self) -> Value {
        self.send("GET", "/v1/services/shop", &[], b"").await.1["active"].clone()
    }
}
