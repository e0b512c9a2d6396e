//! Active health probes speak the pool's protocol and send the configured Host.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::time::Duration;
use switchyard_control::{Controller, spawn};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A backend that speaks only `h2` (prior knowledge) or only HTTP/1.1, and reports
/// the host of every request it answers (`:authority` or `Host`).
async fn backend(h2: bool) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            let svc = service_fn(move |req: Request<Incoming>| {
                let host = req.uri().authority().map(|a| a.to_string());
                let host = host.or_else(|| req.headers().get("host").map(|h| h.to_str().unwrap().to_owned()));
                let _ = tx.send(host.unwrap_or_default());
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
            });
            let io = TokioIo::new(stream);
            tokio::spawn(async move {
                let _ = if h2 {
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(io, svc).await
                } else {
                    hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await
                };
            });
        }
    });
    (addr, rx)
}

async fn probes_then_health(protocol: &str, h2: bool) -> (Vec<String>, bool) {
    let (addr, mut hosts) = backend(h2).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sy.toml");
    std::fs::write(
        &path,
        format!(
            "[listener]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"state.json\"\n[[service]]\nname = \"grpc\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{addr}\"]\nprotocol = \"{protocol}\"\n[service.health]\npath = \"/healthz\"\nhost = \"grpc.internal\"\ninterval = \"20ms\"\ntimeout = \"1s\"\nunhealthy_threshold = 1\nhealthy_threshold = 1\n"
        ),
    )
    .unwrap();
    let (controller, _router) = Controller::start(switchyard_config::load(&path).unwrap(), false).unwrap();
    let handle = spawn(controller);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let host = tokio::time::timeout(Duration::from_secs(5), hosts.recv()).await;
        seen.push(host.expect("the backend got no probe it could read").unwrap());
    }
    // The verdict of the third probe is in before the fourth starts.
    let _ = tokio::time::timeout(Duration::from_secs(5), hosts.recv()).await;
    let v = handle.service("grpc").await.unwrap();
    (seen, v.pools["blue"].backends[0].healthy)
}

#[tokio::test]
async fn an_h2c_pool_is_probed_over_http2_and_stays_healthy() {
    let (hosts, healthy) = probes_then_health("h2c", true).await;
    assert_eq!(hosts, ["grpc.internal"; 3]);
    assert!(healthy);
}

#[tokio::test]
async fn an_http1_probe_sends_the_configured_host() {
    let (hosts, healthy) = probes_then_health("http1", false).await;
    assert_eq!(hosts, ["grpc.internal"; 3]);
    assert!(healthy);
}
