//! The client-side limits of `[listener]` over real sockets: `header_timeout`,
//! `idle_timeout` (HTTP/1.1 and h2), `max_header_bytes` for h2, and half-close.
//! The exact deadlines are tested on the paused clock over in-memory connections
//! (`lifetime` unit tests); here, with real sockets and real time, only what
//! holds with wide margins: a connection is still usable after a wait shorter
//! than its deadline by seconds, and is closed well before a bound it must meet.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;
use switchyard_test_support::{RawConn, TestProxy, Upstream, config_from};
use tokio::net::TcpStream;

async fn proxy(up: &Upstream, listener: &str) -> TestProxy {
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n{listener}\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        up.address()
    ));
    TestProxy::start(&cfg).await
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// Waits (at most `bound`) for the proxy to close `conn` without sending anything.
async fn closed_within(conn: &mut RawConn, bound: Duration) {
    let rest = tokio::time::timeout(bound, conn.closed()).await.expect("connection still open");
    assert!(rest.is_empty(), "closed with bytes: {}", String::from_utf8_lossy(&rest));
}

#[tokio::test]
async fn idle_keep_alive_connection_outlives_header_timeout_and_closes_at_idle_timeout() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "header_timeout = \"200ms\"\nidle_timeout = \"3s\"").await;
    let mut c = RawConn::open(proxy.addr).await;
    assert!(c.send(GET).await);
    assert_eq!(c.response().await.unwrap().status, 200);
    // Idle for three header_timeouts: a keep-alive connection waits for idle_timeout.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(c.send(GET).await);
    assert_eq!(c.response().await.expect("closed before idle_timeout").status, 200);
    closed_within(&mut c, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn idle_timeout_closes_a_connection_long_before_header_timeout_would() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "header_timeout = \"60s\"\nidle_timeout = \"300ms\"").await;
    let mut c = RawConn::open(proxy.addr).await;
    assert!(c.send(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n").await);
    up.arrived().await;
    // In flight for three idle_timeouts: not cut.
    tokio::time::sleep(Duration::from_millis(900)).await;
    up.release(1);
    assert_eq!(c.response().await.expect("cut while in flight").status, 200);
    closed_within(&mut c, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_stalled_keep_alive_head_is_cut_at_header_timeout_not_idle_timeout() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "header_timeout = \"300ms\"\nidle_timeout = \"60s\"").await;
    let mut c = RawConn::open(proxy.addr).await;
    assert!(c.send(GET).await);
    assert_eq!(c.response().await.unwrap().status, 200);
    assert!(c.send(b"GET / HTTP/1.1\r\nHost: x\r\n").await);
    closed_within(&mut c, Duration::from_secs(20)).await;
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn an_h2_preface_that_never_completes_is_closed_at_header_timeout() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "header_timeout = \"300ms\"").await;
    let mut c = RawConn::open(proxy.addr).await;
    assert!(c.send(b"PRI * HTTP/2.0\r\n").await);
    closed_within(&mut c, Duration::from_secs(20)).await;
}

async fn h2(proxy: &TestProxy) -> (hyper::client::conn::http2::SendRequest<Full<Bytes>>, tokio::task::JoinHandle<()>) {
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, driver)
}

#[tokio::test]
async fn an_idle_h2_connection_is_closed_after_idle_timeout() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "header_timeout = \"200ms\"\nidle_timeout = \"2s\"").await;
    let (mut send, driver) = h2(&proxy).await;
    // Past header_timeout: after its preface an h2 connection waits for requests.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let resp = send.send_request(Request::get("http://x/").body(Full::default()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "blue");
    tokio::time::timeout(Duration::from_secs(20), driver).await.expect("h2 connection never closed").unwrap();
}

#[tokio::test]
async fn h2_header_block_over_max_header_bytes_gets_431_and_never_reaches_the_backend() {
    let up = Upstream::spawn("blue").await;
    // Below hyper's own 16 KiB default, so the setting is what refuses it.
    let proxy = proxy(&up, "max_header_bytes = 8192").await;
    let (mut send, _driver) = h2(&proxy).await;
    let big = Request::get("http://x/").header("x-big", "a".repeat(12_000)).body(Full::default()).unwrap();
    match send.send_request(big).await {
        Ok(resp) => assert_eq!(resp.status(), 431),
        Err(e) => panic!("want a 431 answer, got {e}"),
    }
    assert_eq!(up.hits(), 0);
    // The connection lives on for well-behaved requests.
    send.ready().await.unwrap();
    let ok = send.send_request(Request::get("http://x/").body(Full::default()).unwrap()).await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "").await;
    let mut c = RawConn::open(proxy.addr).await;
    assert!(c.send(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n").await);
    c.shutdown_write().await;
    // The proxy has read the EOF by the time the backend holds the request.
    up.arrived().await;
    up.release(1);
    let r = c.response().await.expect("the answer, although the client shut its write side");
    assert_eq!((r.status, r.text()), (200, "blue".to_owned()));
    assert!(c.closed().await.is_empty(), "then the connection is closed");
}
