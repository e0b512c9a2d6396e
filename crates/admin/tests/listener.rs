//! The admin listener is bounded (SPEC §4): a header timeout, a connection
//! limit, and an answer for clients that half-close after their request.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::start;
use std::time::Duration;
use switchyard_admin::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any awaited event may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(5);

async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(HUNG, s.read_to_end(&mut out)).await.expect("connection neither answered nor closed").unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one whole answer on a keep-alive connection (ends with the `ok\n` body of /healthz).
async fn read_healthz(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while !out.ends_with(b"\r\n\r\nok\n") {
        let n = tokio::time::timeout(HUNG, s.read(&mut buf)).await.expect("no answer").unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    // As `printf 'GET /healthz HTTP/1.0\r\n\r\n' | nc -N host port` does.
    // The /v1 calls wait for the control thread, so the EOF arrives while the
    // answer is being made: without half-close support the server drops them.
    let a = start(Limits::default(), "").await;
    let services = format!("GET /v1/services HTTP/1.0\r\nAuthorization: Bearer {}\r\n\r\n", common::OP);
    let reload = format!("POST /v1/reload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n", common::OP);
    for (req, expect) in [
        ("GET /healthz HTTP/1.0\r\n\r\n", "ok\n"),
        (services.as_str(), "\"generation\":1"),
        (reload.as_str(), "\"generation\":2"),
    ] {
        let mut s = TcpStream::connect(a.addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        s.shutdown().await.unwrap();
        let answer = read_all(&mut s).await;
        assert!(answer.starts_with("HTTP/1.") && answer.contains(" 200 "), "{req:?}: {answer:?}");
        assert!(answer.contains(expect), "{req:?}: {answer:?}");
    }
}

#[tokio::test]
async fn headers_must_arrive_within_the_header_timeout() {
    let limits = Limits { header_timeout: Duration::from_millis(200), ..Limits::default() };
    let a = start(limits, "").await;
    // Slowloris: part of a request, then nothing. And a connection that never says a word.
    let mut partial = TcpStream::connect(a.addr).await.unwrap();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut silent = TcpStream::connect(a.addr).await.unwrap();
    // Both are closed by the server (no request was complete, so no answer is owed).
    read_all(&mut partial).await;
    read_all(&mut silent).await;
    // An idle keep-alive connection too.
    let mut idle = TcpStream::connect(a.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_healthz(&mut idle).await.starts_with("HTTP/1.1 200"));
    assert_eq!(read_all(&mut idle).await, "");
}

#[tokio::test]
async fn at_the_connection_limit_the_next_client_waits_until_one_closes() {
    let a = start(Limits { max_connections: 2, ..Limits::default() }, "").await;
    let req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = TcpStream::connect(a.addr).await.unwrap();
    let mut second = TcpStream::connect(a.addr).await.unwrap();
    for c in [&mut first, &mut second] {
        c.write_all(req).await.unwrap();
        assert!(read_healthz(c).await.starts_with("HTTP/1.1 200"));
    }
    // Both are open (keep-alive): the third is left in the backlog, unanswered.
    let mut third = TcpStream::connect(a.addr).await.unwrap();
    third.write_all(req).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte)).await;
    assert!(early.is_err(), "the third connection was served while two were open: {early:?}");
    // The first closes: its slot goes to the third, whose request is answered.
    drop(first);
    assert!(read_healthz(&mut third).await.starts_with("HTTP/1.1 200"));
    // The second is still served as before.
    second.write_all(req).await.unwrap();
    assert!(read_healthz(&mut second).await.starts_with("HTTP/1.1 200"));
}

#[test]
fn default_limits_are_the_spec_ones() {
    assert_eq!(Limits::default(), Limits { max_connections: 256, header_timeout: Duration::from_secs(10) });
}
