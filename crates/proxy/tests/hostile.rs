//! Broken and hostile HTTP on raw sockets: each gets 400/431 or a close, and the
//! proxy keeps serving afterwards.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use http::StatusCode;
use std::time::Duration;
use switchyard_test_support::{Conn, TestProxy, Upstream, config_from, raw_exchange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn proxy_for(up: &Upstream, listener_extra: &str) -> TestProxy {
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n{listener_extra}\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        up.address()
    ));
    TestProxy::start(&cfg).await
}

async fn still_serves(proxy: &TestProxy) {
    assert_eq!(Conn::open(proxy.addr).await.get("x", "/").await, (StatusCode::OK, "blue".to_owned()));
}

#[tokio::test]
async fn malformed_request_line_gets_400_or_close() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy_for(&up, "").await;
    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let answer = raw_exchange(proxy.addr, junk).await;
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 400"), "{junk:?} got {answer:?}");
    }
    assert_eq!(up.hits(), 0);
    still_serves(&proxy).await;
}

#[tokio::test]
async fn content_length_with_transfer_encoding_never_reaches_upstream_ambiguous() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy_for(&up, "").await;
    // The smuggling shape: CL says 4 bytes, chunked says the body is empty and a
    // second request follows. It must not be read as two requests.
    let req = b"POST /headers HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = raw_exchange(proxy.addr, req).await;
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "one answer only, then close: {answer}");
    assert!(!answer.to_ascii_lowercase().contains("content-length: 4\n"), "{answer}");
    assert!(up.hits() <= 1, "the trailing request was not forwarded");
    still_serves(&proxy).await;
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy_for(&up, "max_header_bytes = 8192").await;
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let answer = raw_exchange(proxy.addr, big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert_eq!(up.hits(), 0);
    still_serves(&proxy).await;
}

#[tokio::test]
async fn slow_headers_are_cut_off_after_header_timeout() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy_for(&up, "header_timeout = \"300ms\"").await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // Never finish the head: the proxy must close (read returns 0 or an error) well
    // before this generous bound.
    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
    match closed {
        Ok(Ok(n)) => assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{n}"),
        Ok(Err(_)) => {}
        Err(_) => panic!("connection still open after header_timeout"),
    }
    assert_eq!(up.hits(), 0);
    still_serves(&proxy).await;
}

#[tokio::test]
async fn connect_method_is_refused() {
    let up = Upstream::spawn("blue").await;
    let proxy = proxy_for(&up, "").await;
    let answer = raw_exchange(
        proxy.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer:?}");
    still_serves(&proxy).await;
}
