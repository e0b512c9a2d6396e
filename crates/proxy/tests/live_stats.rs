//! Live per-pool figures (`PoolStats::window`) from real requests through the
//! in-process proxy: status classes, the proxy's own 5xx as errors, time to first
//! byte taken at the response head, upgrades left out.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use switchyard_proxy::PoolStats;
use switchyard_test_support::{Conn, TestProxy, Upstream, config_from};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

mod ws_echo;
use ws_echo::ws_echo;

fn config(blue: &str, green: &str) -> switchyard_config::Config {
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{blue}\"]\n[service.pools.green]\nbackends = [\"{green}\"]\n"
    ))
}

fn stats(proxy: &TestProxy, pool: &str) -> Arc<PoolStats> {
    proxy.router.load().service("shop").unwrap().pool(pool).unwrap().stats.clone()
}

/// A port nothing listens on.
async fn dead_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn proxied_answers_are_counted_by_class_and_5xx_as_errors() {
    let (blue, green) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&config(&blue.address(), &green.address())).await;
    let s = stats(&proxy, "blue");
    let mut c = Conn::open(proxy.addr).await;
    for path in ["/", "/", "/status/302", "/status/404", "/status/500", "/status/503", "/"] {
        c.get("shop.example.com", path).await;
    }
    s.sample(1);
    let w = s.window(0, 1);
    assert_eq!(w.classes, [0, 3, 1, 1, 2]);
    assert_eq!((w.requests, w.errors), (7, 2));
    assert!((w.error_rate() - 2.0 / 7.0).abs() < 1e-9);
    assert_eq!(w.buckets().iter().sum::<u64>(), 7);
    assert!(w.quantile(0.5).unwrap() < Duration::from_secs(5));
    // Green had nothing; a later window has nothing new.
    assert_eq!(stats(&proxy, "green").window(0, 1).requests, 0);
    s.sample(2);
    assert_eq!(s.window(1, 2).requests, 0);
    // The two 5xx came in a row; the 200 after them ended the run.
    assert_eq!(s.take_max_error_run(), 2);
    assert_eq!(s.take_max_error_run(), 0);
}

#[tokio::test]
async fn the_proxys_own_503_and_502_are_errors_of_the_pool() {
    let (blue, dead) = (Upstream::spawn("blue").await, dead_port().await);
    let proxy = TestProxy::start(&config(&blue.address(), &dead)).await;
    let (blue_stats, green_stats) = (stats(&proxy, "blue"), stats(&proxy, "green"));
    let mut c = Conn::open(proxy.addr).await;
    assert_eq!(c.get("shop", "/").await.0, StatusCode::OK, "blue first");
    proxy.apply(&config_from(&switched(&blue.address(), &dead)));
    assert_eq!(c.get("shop", "/").await.0, StatusCode::BAD_GATEWAY, "refused connect");
    // The checks call it unhealthy: no healthy backend.
    proxy.router.load().service("shop").unwrap().pool("green").unwrap().backends[0].set_healthy(false);
    assert_eq!(c.get("shop", "/").await.0, StatusCode::SERVICE_UNAVAILABLE);
    green_stats.sample(1);
    let g = green_stats.window(0, 1);
    assert_eq!((g.requests, g.errors, g.classes[4]), (2, 2, 2));
    assert!((g.error_rate() - 1.0).abs() < f64::EPSILON);
    assert_eq!(green_stats.take_max_error_run(), 2);

    // Back to blue, whose backend the checks call unhealthy: 503 from the proxy.
    proxy.apply(&config(&blue.address(), &dead));
    proxy.router.load().service("shop").unwrap().pool("blue").unwrap().backends[0].set_healthy(false);
    assert_eq!(c.get("shop", "/").await.0, StatusCode::SERVICE_UNAVAILABLE);
    blue_stats.sample(1);
    let b = blue_stats.window(0, 1);
    assert_eq!((b.requests, b.errors, b.classes), (2, 1, [0, 1, 0, 0, 1]));
}

/// The same service with all traffic on green.
fn switched(blue: &str, green: &str) -> String {
    format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"green\"\n[service.pools.blue]\nbackends = [\"{blue}\"]\n[service.pools.green]\nbackends = [\"{green}\"]\n"
    )
}

#[tokio::test]
async fn time_to_first_byte_is_counted_when_the_head_arrives() {
    let (blue, green) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&config(&blue.address(), &green.address())).await;
    let s = stats(&proxy, "blue");

    // A held request answered after ≥ 30 ms: its latency is at least that.
    let addr = proxy.addr;
    let held = tokio::spawn(async move { Conn::open(addr).await.get("shop", "/hold").await });
    assert_eq!(blue.arrived().await, "/hold");
    tokio::time::sleep(Duration::from_millis(30)).await; // the latency being measured
    blue.release(1);
    assert_eq!(held.await.unwrap().0, StatusCode::OK);
    s.sample(1);
    let p50 = s.window(0, 1).quantile(0.5).unwrap();
    assert!(p50 >= Duration::from_millis(28), "p50 {p50:?}");

    // A download whose body is still streaming is already counted (head received).
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get("/download?bytes=200000&pause=1").header("host", "shop").body(Empty::<bytes::Bytes>::new());
    let resp = send.send_request(req.unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.sample(2);
    assert_eq!(s.inflight(), 1, "the body is still streaming");
    assert_eq!(s.window(1, 2).requests, 1);
    blue.release(1);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 200_000);
    s.sample(3);
    assert_eq!(s.window(2, 3).requests, 0, "counted once, at the head");
}

#[tokio::test]
async fn an_upgrade_is_not_counted() {
    let (blue, green) = (ws_echo("blue").await, ws_echo("green").await);
    let proxy = TestProxy::start(&config(&blue, &green)).await;
    let s = stats(&proxy, "blue");
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async("ws://shop/socket", stream).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("blue: hi"));
    s.sample(1);
    assert_eq!(s.window(0, 1).requests, 0);
    assert_eq!(s.upgraded(), 1);
}
