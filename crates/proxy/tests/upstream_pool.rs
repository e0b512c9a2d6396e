//! The HTTP/1 upstream connection pool: keep-alive reuse, and every way an idle
//! connection must go away without costing a request (the backend closed it, its
//! answer was abandoned, its pool lost all traffic, it idled past `pool_idle`),
//! and upstreams that answer garbage or cut a body short.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use switchyard_config::Config;
use switchyard_test_support::{Conn, TestProxy, Upstream, assert_eventually, config_from};
use tokio::net::{TcpListener, TcpStream};

fn config(blue: &Upstream, green: &Upstream, active: &str, timeouts: &str) -> Config {
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n{timeouts}\n[service.traffic]\nactive = \"{active}\"\n[service.pools.blue]\nbackends = [\"{}\"]\n[service.pools.green]\nbackends = [\"{}\"]\n",
        blue.address(),
        green.address()
    ))
}

/// Blue and green upstreams and a proxy sending all traffic to blue.
async fn blue_active(timeouts: &str) -> (Upstream, Upstream, TestProxy) {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&config(&b, &g, "blue", timeouts)).await;
    (b, g, proxy)
}

/// A request on a new client connection answers 200 from `pool`.
async fn answers_from(proxy: &TestProxy, pool: &str) {
    assert_eq!(Conn::open(proxy.addr).await.get("shop", "/").await, (StatusCode::OK, pool.to_owned()));
}

#[tokio::test]
async fn one_upstream_connection_serves_sequential_requests_from_many_clients() {
    let (b, _g, proxy) = blue_active("").await;
    let mut c = Conn::open(proxy.addr).await;
    for _ in 0..5 {
        assert_eq!(c.get("shop", "/").await, (StatusCode::OK, "blue".into()));
    }
    for _ in 0..5 {
        answers_from(&proxy, "blue").await;
    }
    assert_eq!(b.hits(), 10);
    assert_eq!(b.connections(), 1, "every request after the first reused the idle connection");
}

/// A proxy whose one idle connection to blue the backend closed: blue restarted
/// on the same port (as `blue-again`).
async fn blue_restarted() -> (Upstream, TestProxy) {
    let (b, _g, proxy) = blue_active("").await;
    answers_from(&proxy, "blue").await;
    b.stop();
    assert_eventually!(b.open_connections() == 0, "the backend closed its side");
    (Upstream::serve("blue-again", TcpListener::bind(b.addr).await.unwrap()), proxy)
}

#[tokio::test]
async fn a_connection_the_backend_closed_while_idle_costs_no_request() {
    let (again, proxy) = blue_restarted().await;
    answers_from(&proxy, "blue-again").await;
    assert_eq!(again.connections(), 1);
}

#[tokio::test]
async fn a_post_after_the_backend_closed_the_idle_connection_goes_on_a_fresh_one() {
    let (again, proxy) = blue_restarted().await;
    // A POST is never sent twice, so it must not go out on the closed connection:
    // the check before reuse sees the close (not a retry after it).
    let post = Request::post("/orders").header("host", "shop").body(Full::new(Bytes::from("hello"))).unwrap();
    assert_eq!(Conn::open(proxy.addr).await.send(post).await, (StatusCode::OK, "blue-again".to_owned()));
    assert_eq!(again.connections(), 1);
}

#[tokio::test]
async fn a_connection_whose_answer_was_abandoned_is_closed_not_reused() {
    let (b, _g, proxy) = blue_active("").await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    let client = tokio::spawn(conn);
    let req = Request::get("/download?bytes=10000000&pause=1").header("host", "shop").body(Full::<Bytes>::default());
    let mut body = send.send_request(req.unwrap()).await.unwrap().into_body();
    assert!(!body.frame().await.unwrap().unwrap().into_data().unwrap().is_empty());
    // The client goes away mid-body; the rest must never reach the next request.
    drop((body, send));
    client.abort();
    b.release(1);
    assert_eventually!(b.open_connections() == 0, "the proxy closed the abandoned upstream connection");
    answers_from(&proxy, "blue").await;
    assert_eq!(b.connections(), 2);
}

#[tokio::test]
async fn cutover_closes_idle_connections_to_the_pool_that_lost_its_traffic() {
    let (b, g, proxy) = blue_active("").await;
    answers_from(&proxy, "blue").await;
    assert_eq!(b.open_connections(), 1);
    proxy.apply(&config(&b, &g, "green", ""));
    assert_eventually!(
        b.open_connections() == 0,
        "blue's idle connection closes once blue lost its traffic (after the grace)"
    );
    answers_from(&proxy, "green").await;
    // A reload that keeps green's traffic keeps its connection.
    proxy.apply(&config(&b, &g, "green", ""));
    answers_from(&proxy, "green").await;
    assert_eq!(g.connections(), 1);
}

#[tokio::test]
async fn idle_connections_close_after_pool_idle_without_traffic() {
    let (b, _g, proxy) = blue_active("[service.timeouts]\npool_idle = \"100ms\"").await;
    answers_from(&proxy, "blue").await;
    assert_eventually!(b.open_connections() == 0, "the idle connection closes after pool_idle");
    answers_from(&proxy, "blue").await;
    assert_eq!(b.connections(), 2);
}

/// A raw upstream: every connection gets `answer` to its first request, then is closed.
async fn raw_upstream(answer: &'static [u8]) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer).await;
            });
        }
    });
    (addr, accepted)
}

fn only_blue(backend: &str) -> Config {
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{backend}\"]\n"
    ))
}

#[tokio::test]
async fn an_upstream_answering_garbage_gets_502_naming_the_pool_every_time() {
    let (addr, accepted) = raw_upstream(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
    let proxy = TestProxy::start(&only_blue(&addr)).await;
    for n in 1..=2 {
        let (status, body) = Conn::open(proxy.addr).await.get("shop", "/").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(body.contains("shop") && body.contains("blue"), "{body}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), n, "a broken connection is never reused");
    }
}

#[tokio::test]
async fn a_body_cut_short_by_the_upstream_fails_that_response_only() {
    let (addr, accepted) = raw_upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort").await;
    let proxy = TestProxy::start(&only_blue(&addr)).await;
    for n in 1..=2 {
        let stream = TcpStream::connect(proxy.addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let req = Request::get("/").header("host", "shop").body(Full::<Bytes>::default()).unwrap();
        // The head may or may not have left before the cut; either way the client
        // must see a failure, never a short body passed off as complete.
        let failed = match send.send_request(req).await {
            Err(_) => true,
            Ok(resp) => resp.into_body().collect().await.is_err(),
        };
        assert!(failed, "a truncated body must not look complete");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), n);
    }
}
