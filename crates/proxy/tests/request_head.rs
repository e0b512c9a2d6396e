//! What the backend sees of a client's request head, and the heads the proxy
//! refuses itself: the routed host as `Host`, cookies joined and the proxy's own
//! routing inputs removed, only WebSocket upgrades, strict `Host` and
//! `Transfer-Encoding`, `max_request_body`, and `OPTIONS *` as it came.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::OnceLock;
use switchyard_metrics::PrometheusHandle;
use switchyard_test_support::{RawConn, RawEvent, RawUpstream, TestProxy, Upstream, config_from};
use tokio::net::TcpStream;

fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| switchyard_metrics::install().unwrap())
}

/// A proxy with service `name` (catch-all) on `up`; `listener` and `service` add keys.
async fn proxy(up: &Upstream, name: &str, listener: &str, service: &str) -> TestProxy {
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n{listener}\n[[service]]\nname = \"{name}\"\n{service}\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        up.address()
    ));
    TestProxy::start(&cfg).await
}

/// Sends `head` and returns the one response.
async fn exchange(proxy: &TestProxy, head: &[u8]) -> switchyard_test_support::RawResponse {
    let mut c = RawConn::open(proxy.addr).await;
    assert!(c.send(head).await);
    c.response().await.expect("a complete response")
}

fn header_lines(echo: &str, name: &str) -> Vec<String> {
    echo.lines().filter(|l| l.starts_with(&format!("{name}: "))).map(str::to_owned).collect()
}

#[tokio::test]
async fn absolute_form_host_replaces_the_clients_host() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "shop", "", "hosts = [\"shop.example.com\"]").await;
    let r = exchange(&proxy, b"GET http://shop.example.com/headers HTTP/1.1\r\nHost: other\r\n\r\n").await;
    assert_eq!(r.status, 200, "routed by the URI's host: {r:?}");
    let echo = r.text();
    assert_eq!(header_lines(&echo, "host"), ["host: shop.example.com"], "{echo}");
    assert_eq!(header_lines(&echo, "x-forwarded-host"), ["x-forwarded-host: shop.example.com"], "{echo}");
}

#[tokio::test]
async fn h2_authority_replaces_host_and_cookie_fields_are_joined() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "shop", "", "hosts = [\"shop.example.com\"]").await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get("http://shop.example.com/headers")
        .header("host", "other")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let echo = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert_eq!(header_lines(&echo, "host"), ["host: shop.example.com"], "{echo}");
    assert_eq!(header_lines(&echo, "cookie"), ["cookie: a=1; b=2"], "{echo}");
}

#[tokio::test]
async fn preview_header_preview_cookie_and_override_header_are_not_forwarded() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "shop", "", "override = { header = \"x-pool\" }").await;
    let r = exchange(
        &proxy,
        b"GET /headers HTTP/1.1\r\nHost: x\r\nX-Switchyard-Preview: blue.1.abc\r\nCookie: a=1; sy_preview=blue.1.abc; b=2\r\nX-Pool: blue\r\nX-Kept: 1\r\n\r\n",
    )
    .await;
    let echo = r.text();
    assert_eq!(r.status, 200, "{echo}");
    assert!(header_lines(&echo, "x-switchyard-preview").is_empty(), "{echo}");
    assert!(header_lines(&echo, "x-pool").is_empty(), "{echo}");
    assert_eq!(header_lines(&echo, "cookie"), ["cookie: a=1; b=2"], "{echo}");
    assert_eq!(header_lines(&echo, "x-kept"), ["x-kept: 1"], "{echo}");
}

#[tokio::test]
async fn an_h2c_upgrade_is_forwarded_as_a_plain_request() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "shop", "", "").await;
    let r = exchange(
        &proxy,
        b"GET /headers HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    let echo = r.text();
    assert_eq!(r.status, 200, "{echo}");
    for name in ["upgrade", "connection", "http2-settings"] {
        assert!(header_lines(&echo, name).is_empty(), "{name} forwarded: {echo}");
    }
}

#[tokio::test]
async fn missing_or_repeated_host_gets_400_and_close() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "shop", "", "").await;
    for head in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let mut c = RawConn::open(proxy.addr).await;
        assert!(c.send(head).await);
        let r = c.response().await.unwrap();
        assert_eq!(r.status, 400, "{}: {r:?}", String::from_utf8_lossy(head));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed().await.is_empty(), "nothing after the 400, the connection closes");
    }
    assert_eq!(up.hits(), 0);
    // HTTP/1.0 needs no Host.
    assert_eq!(exchange(&proxy, b"GET / HTTP/1.0\r\n\r\n").await.status, 200);
}

#[tokio::test]
async fn transfer_encoding_other_than_chunked_alone_gets_501_and_close() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "shop", "", "").await;
    for te in ["gzip, chunked", "chunked, chunked"] {
        let head =
            format!("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        let mut c = RawConn::open(proxy.addr).await;
        assert!(c.send(head.as_bytes()).await);
        let r = c.response().await.unwrap();
        assert_eq!(r.status, 501, "{te}: {r:?}");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed().await.is_empty());
    }
    // A coding list that does not end in chunked: 501 too (SPEC §7).
    let r = exchange(&proxy, b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n").await;
    assert_eq!(r.status, 501);
    assert_eq!(up.hits(), 0);
    let r = exchange(
        &proxy,
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!((r.status, r.text()), (200, "blue 5".to_owned()));
}

fn requests_4xx(service: &str) -> String {
    let text = metrics().render();
    let key = format!("switchyard_requests_total{{service=\"{service}\",pool=\"blue\",code=\"4xx\"}}");
    text.lines().find(|l| l.starts_with(&key)).map_or_else(|| "none".to_owned(), |l| l[key.len()..].trim().to_owned())
}

#[tokio::test]
async fn declared_body_over_max_request_body_gets_413_before_anything_goes_upstream() {
    metrics();
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "declared", "max_request_body = \"1KiB\"", "").await;
    let mut c = RawConn::open(proxy.addr).await;
    // The body is never sent: the answer must not wait for it.
    assert!(c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n").await);
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.text().contains("declared") && r.text().contains("blue"), "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(up.hits(), 0);
    assert_eq!(requests_4xx("declared"), "1");
    // At the limit is fine.
    let body = "x".repeat(1024);
    let r =
        exchange(&proxy, format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n{body}").as_bytes())
            .await;
    assert_eq!((r.status, r.text()), (200, "blue 1024".to_owned()));
}

#[tokio::test]
async fn chunked_body_growing_past_max_request_body_gets_413_when_nothing_was_answered() {
    metrics();
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "chunked", "max_request_body = \"1KiB\"", "").await;
    let mut c = RawConn::open(proxy.addr).await;
    let chunk = format!("258\r\n{}\r\n", "x".repeat(600));
    assert!(c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").await);
    assert!(c.send(chunk.as_bytes()).await);
    assert!(c.send(chunk.as_bytes()).await);
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(requests_4xx("chunked"), "1");
}

#[tokio::test]
async fn chunked_body_growing_past_max_request_body_after_the_answer_cuts_the_response() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy(&up, "cut", "max_request_body = \"1KiB\"", "").await;
    let mut c = RawConn::open(proxy.addr).await;
    // The backend answers at once (without reading the body) and pauses after its first chunk.
    assert!(
        c.send(b"POST /download?bytes=200000&pause=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").await
    );
    assert!(c.send(format!("100\r\n{}\r\n", "x".repeat(256)).as_bytes()).await);
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 4096];
        let n = tokio::io::AsyncReadExt::read(&mut c.stream, &mut chunk).await.unwrap();
        assert!(n > 0, "closed before the answer began");
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
    // Past the limit: the exchange is cut, the client's response never completes.
    let _ = c.send(format!("800\r\n{}\r\n", "x".repeat(2048)).as_bytes()).await;
    let rest = tokio::time::timeout(std::time::Duration::from_secs(10), c.closed()).await;
    seen.extend(rest.expect("the client connection was not cut"));
    assert!(!seen.ends_with(b"0\r\n\r\n"), "the response must not look complete");
    assert!(seen.len() < 200_000, "the response was cut");
    up.release(1);
}

#[tokio::test]
async fn options_asterisk_goes_up_as_it_came_and_the_connection_keeps_strict_framing() {
    let up = RawUpstream::spawn(usize::MAX).await;
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"app\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        up.address()
    ));
    let proxy = TestProxy::start(&cfg).await;
    let mut c = RawConn::open(proxy.addr).await;
    assert!(c.send(b"OPTIONS * HTTP/1.1\r\nHost: app\r\n\r\n").await);
    let r = c.response().await.expect("an answer");
    assert_eq!((r.status, r.text().as_str()), (200, "conn-1"), "{r:?}");
    assert_eq!(up.next().await, RawEvent::Request { conn: 1, line: "OPTIONS * HTTP/1.1".to_owned() });
    // The same connection still refuses what SPEC §7 refuses (hyper, which carried
    // `OPTIONS *` before, would read this body as chunked and forward it).
    assert!(
        c.send(b"POST /x HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            .await
    );
    assert_eq!(c.response().await.expect("an answer").status, 400);
    assert_eq!(up.connections(), 1);
}
