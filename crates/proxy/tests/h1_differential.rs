//! Differential fuzzing of the HTTP/1 path's request parser against hyper's server:
//! the same bytes — requests built from the pieces request smuggling is made of
//! (competing lengths, codings, folded and spaced names, bare CR and LF, chunk
//! extensions, pipelining), then mutated at random — go through both. Every message
//! switchyard accepts, hyper must read too, with the same method and the same body
//! length, in the same order: the two agree on where each message ends, or
//! switchyard refuses. Bounded for CI (`PROPTEST_CASES` raises it for a campaign).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod h1_common;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// One message as read: method and body length (`None`: the body broke).
type Read = (String, Option<usize>);

/// The messages switchyard's parser accepts, in order (`h1_common::messages`).
fn ours(input: &[u8]) -> Vec<Read> {
    h1_common::messages(input).0.into_iter().map(|(method, size)| (method, Some(size))).collect()
}

/// The messages hyper's HTTP/1 server reads from the same bytes (then end of input).
async fn hypers(input: Vec<u8>) -> Vec<Read> {
    let seen: Arc<Mutex<Vec<Read>>> = Arc::default();
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let log = seen.clone();
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let log = log.clone();
        async move {
            let method = req.method().to_string();
            let size = req.into_body().collect().await.ok().map(|b| b.to_bytes().len());
            log.lock().unwrap().push((method, size));
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().half_close(true).serve_connection(TokioIo::new(server), svc);
    client.write_all(&input).await.unwrap();
    client.shutdown().await.unwrap();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
    seen.lock().unwrap().clone()
}

fn piece(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(options)
}

/// A request (or two, pipelined) from pieces, with a few random byte edits.
fn requests() -> impl Strategy<Value = Vec<u8>> {
    let method = piece(&["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "get", "PRI", "CONNECT"]);
    let target = piece(&["/", "/a?b=1", "*", "http://x/y", "/%00", "/a b"]);
    let version = piece(&["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/1.1 "]);
    let header = piece(&[
        "Host: a",
        "Host: b",
        "Content-Length: 5",
        "Content-Length: 3",
        "Content-Length: 0",
        "Content-Length: 5, 5",
        "Content-Length: 5, 3",
        "Content-Length: +5",
        "Content-Length: 05",
        "Content-Length:5",
        "Content-Length: 5 ",
        "Content-Length: 99999999999999999999",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: Chunked",
        "Transfer-Encoding: chunked ",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: identity",
        "Transfer-Encoding: xchunked",
        "Transfer-Encoding:\tchunked",
        " Transfer-Encoding: chunked",
        "Transfer-Encoding : chunked",
        "Transfer_Encoding: chunked",
        "X: a\rb",
        "X: a\0b",
        "X:",
        "Connection: close",
        "Connection: keep-alive",
        "Connection: upgrade",
        "Upgrade: websocket",
        "Expect: 100-continue",
        "X-Pad: aaaaaaaaaaaaaaaa",
    ]);
    let eol = || piece(&["\r\n", "\r\n", "\r\n", "\r\n", "\n", "\r"]);
    let body = piece(&[
        "",
        "hello",
        "abc",
        "5\r\nhello\r\n0\r\n\r\n",
        "5;a=b\r\nhello\r\n0\r\n\r\n",
        "5;a=\"b;c\"\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n",
        "5\nhello\n0\n\n",
        "0\r\n\r\n",
        "0\r\nT: 1\r\n\r\n",
        "0\r\n T: 1\r\n\r\n",
        "3\r\nabcde\r\n0\r\n\r\n",
        "-1\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "fffffffffffffffff\r\n",
        "5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    ]);
    let next = piece(&[
        "",
        "GET /next HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /next HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok",
    ]);
    let edits = proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..3);
    (method, target, version, proptest::collection::vec((header, eol()), 0..6), eol(), body, next, edits).prop_map(
        |(m, t, v, headers, end, body, next, edits)| {
            let mut raw = format!("{m} {t} {v}\r\n").into_bytes();
            for (h, eol) in headers {
                raw.extend_from_slice(h.as_bytes());
                raw.extend_from_slice(eol.as_bytes());
            }
            raw.extend_from_slice(end.as_bytes());
            raw.extend_from_slice(body.as_bytes());
            raw.extend_from_slice(next.as_bytes());
            for (at, byte, kind) in edits {
                let i = at.index(raw.len());
                match kind {
                    0 => raw[i] = byte,
                    1 => raw.insert(i, byte),
                    _ => drop(raw.remove(i)),
                }
            }
            raw
        },
    )
}

#[test]
fn every_message_switchyard_accepts_hyper_reads_the_same() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&requests(), |input| {
        let ours = ours(&input);
        let theirs = rt.block_on(hypers(input.clone()));
        let agreed = theirs.len() >= ours.len() && theirs[..ours.len()] == ours[..];
        prop_assert!(
            agreed,
            "input {:?}\nswitchyard read {ours:?}\nhyper read {theirs:?}",
            String::from_utf8_lossy(&input)
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
