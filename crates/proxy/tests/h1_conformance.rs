//! SPEC §7's framing rules and the request-smuggling regressions pingora fixed
//! (body not drained before reuse, tunnelling before 101, non-chunked
//! Transfer-Encoding, close-delimited request bodies, CL+TE), through a real
//! proxy socket: each case asserts what the client got *and* the exact bytes the
//! backend received.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::{Arc, Mutex};
use switchyard_proxy::h1::chunked::Chunked;
use switchyard_proxy::h1::parse::{self, Body, MAX_HEADERS};
use switchyard_test_support::{RawConn, RawResponse, TestProxy, config_from};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A backend that records each request it reads (head and body, as bytes) and
/// answers with `answer(target)`; it counts its connections.
type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

struct Backend {
    addr: String,
    seen: Seen,
    conns: Arc<Mutex<usize>>,
}

type Answer = fn(&str) -> Vec<u8>;

fn echo_target(target: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{target}", target.len()).into_bytes()
}

impl Backend {
    async fn spawn(answer: Answer) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (seen, conns): (Seen, Arc<Mutex<usize>>) = Default::default();
        let (s, c) = (seen.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                *c.lock().unwrap() += 1;
                let seen = s.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        while let Some((len, target)) = request_end(&buf) {
                            let message: Vec<u8> = buf.drain(..len).collect();
                            seen.lock().unwrap().push(message);
                            if stream.write_all(&answer(&target)).await.is_err() {
                                return;
                            }
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        Backend { addr, seen, conns }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect()
    }

    fn connections(&self) -> usize {
        *self.conns.lock().unwrap()
    }
}

/// Where the first complete request in `buf` ends, and its target.
fn request_end(buf: &[u8]) -> Option<(usize, String)> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parse::request(buf, &mut lines, 64 * 1024).ok()??;
    let target = head.target.to_owned();
    let rest = &buf[head.len..];
    let body = match head.body {
        Body::None => 0,
        Body::Length(n) => usize::try_from(n).ok().filter(|&n| n <= rest.len())?,
        Body::Chunked => Some(Chunked::default().feed(rest).ok()?).filter(|f| f.done)?.used,
        Body::UntilClose => return None,
    };
    Some((head.len + body, target))
}

async fn proxy(backend: &Backend, listener: &str) -> TestProxy {
    TestProxy::start(&config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n{listener}\n[[service]]\nname = \"app\"\nhosts = [\"app\"]\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        backend.addr
    )))
    .await
}

/// Sends `bytes` on a new connection: the first response, and whether the proxy then closed.
async fn refused(proxy: &TestProxy, bytes: &[u8]) -> (RawResponse, bool) {
    let mut c = RawConn::open(proxy.addr).await;
    assert!(c.send(bytes).await);
    let r = c.response().await.expect("a response");
    let rest = c.closed().await;
    (r, rest.is_empty())
}

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n";

#[tokio::test]
async fn ambiguous_or_broken_heads_are_refused_and_nothing_reaches_the_backend() {
    let b = Backend::spawn(echo_target).await;
    let p = proxy(&b, "max_header_bytes = 8192").await;
    let cases: &[(&str, u16)] = &[
        ("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        ("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
        ("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501),
        ("POST / HTTP/1.0\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: app\r\nX: a\r\n folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: app\r\nX: a\rb\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: app\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nX: 1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: app\r\nHost: app\r\n\r\n", 400),
        ("GET /a`b HTTP/1.1\r\nHost: app\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400),
    ];
    for (raw, status) in cases {
        let (r, closed) = refused(&p, format!("{raw}{SMUGGLED}").as_bytes()).await;
        assert_eq!(r.status, *status, "{raw:?}: {r:?}");
        assert!(closed, "{raw:?}: the connection closes after a refusal");
    }
    let big = format!("GET / HTTP/1.1\r\nHost: app\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(refused(&p, big.as_bytes()).await.0.status, 431);
    assert_eq!(b.seen(), Vec::<String>::new(), "nothing reached the backend");
}

#[tokio::test]
async fn bodies_reach_the_backend_exactly_and_pipelined_requests_are_answered_in_order() {
    let b = Backend::spawn(echo_target).await;
    let p = proxy(&b, "").await;
    let mut c = RawConn::open(p.addr).await;
    let chunked = "5;ext=\"a;b\"\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let pipelined = format!(
        "POST /a HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}\
         POST /c HTTP/1.1\r\nHost: app\r\n\r\n{SMUGGLED}"
    );
    assert!(c.send(pipelined.as_bytes()).await);
    for target in ["/a", "/b", "/c", "/smuggled"] {
        let r = c.response().await.unwrap();
        assert_eq!((r.status, r.text()), (200, target.to_owned()));
    }
    let seen = b.seen();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert!(
        seen[0].starts_with("POST /a HTTP/1.1\r\n") && seen[0].ends_with("\r\nContent-Length: 5\r\n\r\nhello"),
        "{}",
        seen[0]
    );
    // Chunks go as sent; trailers do not go at all (a backend could merge them into the head).
    let without_trailers = "5;ext=\"a;b\"\r\nhello\r\n0\r\n\r\n";
    assert!(seen[1].ends_with(&format!("\r\nTransfer-Encoding: chunked\r\n\r\n{without_trailers}")), "{}", seen[1]);
    // A request without a length has no body: what follows is the next request.
    assert!(seen[2].starts_with("POST /c HTTP/1.1\r\n") && seen[2].ends_with("\r\n\r\n"), "{}", seen[2]);
    assert!(seen[3].starts_with("GET /smuggled HTTP/1.1\r\n"));
    assert_eq!(b.connections(), 1, "one upstream connection, reused");
}

#[tokio::test]
async fn an_unread_body_is_never_taken_for_the_next_request() {
    let b = Backend::spawn(echo_target).await;
    let p = proxy(&b, "max_request_body = 10").await;
    // Unknown host: answered 404 without reading the body, so the connection closes.
    let body = SMUGGLED;
    let raw = format!("POST / HTTP/1.1\r\nHost: nobody\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (r, closed) = refused(&p, raw.as_bytes()).await;
    assert_eq!(r.status, 404);
    assert!(closed);
    // Over max_request_body, declared or chunked.
    let (r, closed) = refused(&p, raw.replace("nobody", "app").as_bytes()).await;
    assert_eq!((r.status, closed), (413, true));
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n{SMUGGLED}"
    );
    let (r, closed) = refused(&p, chunked.as_bytes()).await;
    assert_eq!((r.status, closed), (413, true));
    assert!(b.seen().iter().all(|m| !m.starts_with("GET /smuggled")), "{:?}", b.seen());
}

fn answer_from_target(target: &str) -> Vec<u8> {
    match target {
        "/cl-te" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        "/gzip" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx".to_vec(),
        "/no-body" => b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n".to_vec(),
        "/head" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec(),
        "/extra" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA".to_vec(),
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(),
        "/not-101" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno".to_vec(),
        "/chunked-many" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0a\r\n0123456789\r\n\
                             0\r\nT: v\r\n\r\n"
            .to_vec(),
        "/early-hints" => {
            b"HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
        }
        "/bad-chunk" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nno\r\n0\r\n\r\n".to_vec(),
        _ => echo_target(target),
    }
}

#[tokio::test]
async fn response_framing_is_read_strictly() {
    let b = Backend::spawn(answer_from_target).await;
    let p = proxy(&b, "").await;
    let mut c = RawConn::open(p.addr).await;
    for (target, status, body) in
        [("/cl-te", 502, None), ("/gzip", 502, None), ("/no-body", 204, Some("")), ("/chunked", 200, Some("ok"))]
    {
        assert!(c.send(format!("GET {target} HTTP/1.1\r\nHost: app\r\n\r\n").as_bytes()).await);
        let r = c.response().await.unwrap();
        assert_eq!(r.status, status, "{target}: {r:?}");
        if let Some(body) = body {
            assert_eq!(r.text(), body, "{target}");
        }
    }
    // HEAD: the length is passed on, no body follows, and the connection goes on.
    assert!(c.send(b"HEAD /head HTTP/1.1\r\nHost: app\r\n\r\nGET /next HTTP/1.1\r\nHost: app\r\n\r\n").await);
    let mut line = vec![0u8; 0];
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&line).contains("\r\n\r\n/next") {
        let n = c.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        line.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&line);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\n"), "{text}");
    // Bytes beyond a response's length: that upstream connection is not used again.
    let before = b.connections();
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"GET /extra HTTP/1.1\r\nHost: app\r\n\r\nGET /after HTTP/1.1\r\nHost: app\r\n\r\n").await);
    assert_eq!(c.response().await.unwrap().text(), "ok");
    assert_eq!(c.response().await.unwrap().text(), "/after");
    assert_eq!(b.connections(), before + 1, "a fresh connection after the over-long answer");
    // A chunked body broken in its first bytes: the head (the status counted) still
    // reaches the client, then the connection is cut, as when it breaks later.
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"GET /bad-chunk HTTP/1.1\r\nHost: app\r\n\r\n").await);
    let got = String::from_utf8_lossy(&c.closed().await).into_owned();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("\r\n\r\n"), "{got:?}");
}

#[tokio::test]
async fn a_body_longer_than_one_read_keeps_the_connection_alive() {
    let b = Backend::spawn(echo_target).await;
    let p = proxy(&b, "").await;
    let mut c = RawConn::open(p.addr).await;
    // More than the proxy reads at once: the rest is still going up when it starts
    // waiting for the answer, which the backend sends only after the whole body.
    let mut req = b"POST /big HTTP/1.1\r\nHost: app\r\nContent-Length: 1000000\r\n\r\n".to_vec();
    req.resize(req.len() + 1_000_000, b'x');
    assert!(c.send(&req).await);
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.text(), r.header("connection")), (200, "/big".to_owned(), None));
    assert!(c.send(b"GET /next HTTP/1.1\r\nHost: app\r\n\r\n").await);
    assert_eq!(c.response().await.unwrap().text(), "/next");
    let seen = &b.seen()[0];
    let body_at = seen.find("\r\n\r\n").unwrap() + 4;
    assert_eq!(&seen[body_at..], &"x".repeat(1_000_000), "the body went up whole");
}

#[tokio::test]
async fn an_upgrade_is_tunnelled_only_after_the_backends_101() {
    let b = Backend::spawn(answer_from_target).await;
    let p = proxy(&b, "").await;
    let mut c = RawConn::open(p.addr).await;
    let upgrade = "GET /not-101 HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert!(c.send(format!("{upgrade}{SMUGGLED}").as_bytes()).await);
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.text()), (200, "no".to_owned()));
    // No tunnel: what followed is read as a request, and routed as one.
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.text()), (200, "/smuggled".to_owned()));
    let seen = b.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert!(seen[1].starts_with("GET /smuggled HTTP/1.1\r\n"));
}

#[tokio::test]
async fn a_close_delimited_answer_closes_the_client_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nall of it").await;
        }
    });
    let b = Backend { addr, seen: Arc::default(), conns: Arc::default() };
    let p = proxy(&b, "").await;
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n").await);
    let r = c.response().await.unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.text(), "all of it");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_after_timeouts_idle() {
    let up = switchyard_test_support::Upstream::spawn("blue").await;
    let p = TestProxy::start(&config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"app\"\n[service.timeouts]\nidle = \"300ms\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        up.address()
    )))
    .await;
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"GET /download?bytes=200000000 HTTP/1.1\r\nHost: app\r\n\r\n").await);
    // Never read while the proxy writes: once nothing moved for 300 ms it gives up.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let got = tokio::time::timeout(std::time::Duration::from_secs(20), c.closed()).await.expect("the proxy cut it");
    assert!(got.len() < 200_000_000, "the whole body never went out: {} bytes", got.len());
}

#[tokio::test]
async fn a_zero_length_answer_keeps_its_length_whatever_connection_names() {
    let b = Backend::spawn(|_| b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: content-length\r\n\r\n".to_vec())
        .await;
    let p = proxy(&b, "").await;
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"GET /a HTTP/1.1\r\nHost: app\r\n\r\nGET /b HTTP/1.1\r\nHost: app\r\n\r\n").await);
    for _ in 0..2 {
        let r = c.response().await.unwrap();
        assert_eq!((r.status, r.header("content-length")), (200, Some("0")), "{r:?}");
    }
}

#[tokio::test]
async fn a_request_sent_a_byte_at_a_time_is_still_read_strictly() {
    let b = Backend::spawn(echo_target).await;
    let p = proxy(&b, "").await;
    let mut c = RawConn::open(p.addr).await;
    c.stream.set_nodelay(true).unwrap();
    // `P` could start the HTTP/2 preface; the rest shows it does not.
    assert!(c.send(b"P").await);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let rest = "OST / HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert!(c.send(rest.as_bytes()).await);
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(b.seen(), Vec::<String>::new());
}

#[tokio::test]
async fn expect_100_continue_is_answered_by_the_proxy_on_this_path() {
    let b = Backend::spawn(echo_target).await;
    let p = proxy(&b, "max_request_body = 10").await;
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").await);
    assert_eq!(c.response().await.unwrap().status, 100, "told to go on before sending the body");
    assert!(c.send(b"hello").await);
    assert_eq!(c.response().await.unwrap().text(), "/up");
    let seen = b.seen();
    assert!(!seen[0].to_ascii_lowercase().contains("expect"), "the expectation is the proxy's: {}", seen[0]);
    assert!(seen[0].ends_with("\r\n\r\nhello"), "{}", seen[0]);
    // Still read by this path (strictly), not handed to hyper, which reads CL+TE as chunked.
    assert!(
        c.send(b"POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            .await
    );
    assert_eq!(c.response().await.unwrap().status, 400);
    // A request refused before its body gets the final answer, not 100.
    let (r, closed) =
        refused(&p, b"POST /big HTTP/1.1\r\nHost: app\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n").await;
    assert_eq!((r.status, closed), (413, true));
    assert_eq!(b.seen().len(), 1);
}

#[tokio::test]
async fn an_absolute_form_target_routes_by_its_authority_and_goes_up_in_origin_form() {
    let b = Backend::spawn(echo_target).await;
    let p = proxy(&b, "").await;
    let mut c = RawConn::open(p.addr).await;
    // The target's host wins over `Host` (RFC 9112 §3.2.2), without its userinfo;
    // a target with no path goes up as `/`.
    let two = "GET http://user@APP:8080/p?q=1 HTTP/1.1\r\nHost: elsewhere\r\n\r\nGET http://app?x HTTP/1.1\r\nHost: app\r\n\r\n";
    assert!(c.send(two.as_bytes()).await);
    assert_eq!(c.response().await.unwrap().text(), "/p?q=1");
    assert_eq!(c.response().await.unwrap().text(), "/?x");
    let forwarded = |host: &str| {
        format!(
            "Host: {host}\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: {host}\r\n\r\n"
        )
    };
    assert_eq!(
        b.seen(),
        [
            format!("GET /p?q=1 HTTP/1.1\r\n{}", forwarded("APP:8080")),
            format!("GET /?x HTTP/1.1\r\n{}", forwarded("app"))
        ]
    );
}

#[tokio::test]
async fn an_http10_client_keeps_alive_only_when_it_asks_and_gets_no_chunks_nor_interim_answers() {
    let b = Backend::spawn(answer_from_target).await;
    let p = proxy(&b, "").await;
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"GET /a HTTP/1.0\r\nHost: app\r\nConnection: keep-alive\r\n\r\n").await);
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.text(), r.header("connection")), (200, "/a".to_owned(), Some("keep-alive")));
    // No interim answer for an HTTP/1.0 client (RFC 9110 §15.2).
    assert!(c.send(b"GET /early-hints HTTP/1.0\r\nHost: app\r\nConnection: keep-alive\r\n\r\n").await);
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.text()), (200, "ok".to_owned()));
    // A chunked answer goes without its framing (chunk data only, no trailers), to the close.
    assert!(c.send(b"GET /chunked-many HTTP/1.0\r\nHost: app\r\nConnection: keep-alive\r\n\r\n").await);
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.header("transfer-encoding"), r.header("connection")), (200, None, Some("close")));
    assert_eq!(r.text(), "abc0123456789");
    // Without `Connection: keep-alive`, the connection closes after the answer.
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"GET /b HTTP/1.0\r\nHost: app\r\n\r\n").await);
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.text(), r.header("connection")), (200, "/b".to_owned(), Some("close")));
    assert!(c.closed().await.is_empty());
    // Upstream, the requests are HTTP/1.1 (the connections are pooled) without the client's `Connection`.
    let seen = b.seen();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert_eq!(
        seen[0],
        "GET /a HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app\r\n\r\n"
    );
}

#[tokio::test]
async fn the_proxys_own_answers_fit_head_and_http10_and_a_fragment_is_refused() {
    let b = Backend::spawn(echo_target).await;
    let p = proxy(&b, "").await;
    // An answer to HEAD has no body: the next answer on the connection is read right.
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"HEAD / HTTP/1.1\r\nHost: nosuch\r\n\r\nGET /x HTTP/1.1\r\nHost: app\r\n\r\n").await);
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.header("content-length"), r.body.len()), (404, Some("0"), 0));
    assert_eq!(c.response().await.unwrap().text(), "/x");
    // The proxy's own answer never says keep-alive, so an HTTP/1.0 connection closes after it.
    let mut c = RawConn::open(p.addr).await;
    assert!(c.send(b"GET / HTTP/1.0\r\nHost: nosuch\r\nConnection: keep-alive\r\n\r\n").await);
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.header("connection")), (404, Some("close")));
    assert!(c.closed().await.is_empty());
    // `#` would end an absolute-form authority early for some readers and not others.
    let (r, closed) = refused(&p, b"GET http://app#@other/ HTTP/1.1\r\nHost: app\r\n\r\n").await;
    assert_eq!((r.status, closed), (400, true));
    assert!(b.seen().iter().all(|s| !s.contains("other")), "{:?}", b.seen());
}
