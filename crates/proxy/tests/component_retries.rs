//! Component tier, paused clock: what is sent again and what is not (SPEC §3), and
//! passive ejection's back-off. A body-less idempotent request whose reused
//! keep-alive connection was closed before any answer goes out once more on a fresh
//! connection; a refused connect goes to another backend of the pool; nothing else
//! is retried once bytes were sent.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use std::time::Duration;
use switchyard_config::Config;
use switchyard_test_support::{Handler, RawEvent, RawUpstream, Ticker, Upstream, config_from, text};
use tokio::time::{Instant, sleep_until};

const RETRIES: &str = "switchyard_upstream_retries_total";

fn config(backends: &[String]) -> Config {
    let list = backends.iter().map(|b| format!("\"{b}\"")).collect::<Vec<_>>().join(", ");
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [{list}]\n"
    ))
}

fn ok(text: &str) -> (StatusCode, Result<String, String>) {
    (StatusCode::OK, Ok(text.to_owned()))
}

fn request(conn: usize, line: &str) -> RawEvent {
    RawEvent::Request { conn, line: line.to_owned() }
}

#[tokio::test(start_paused = true)]
async fn a_get_whose_reused_connection_closed_unanswered_is_sent_again_on_a_fresh_one() {
    let _tick = Ticker::start();
    let b = RawUpstream::spawn(1).await;
    let h = Handler::new(&config(&[b.address()]));
    assert_eq!(h.get_text("/a").await, ok("conn-1"));
    assert_eq!(h.get_text("/b").await, ok("conn-2"));
    assert_eq!(b.next().await, request(1, "GET /a HTTP/1.1"));
    assert_eq!(b.next().await, request(1, "GET /b HTTP/1.1"), "the second GET went out on the kept-alive connection");
    assert_eq!(b.next().await, RawEvent::Closed { conn: 1 });
    assert_eq!(b.next().await, request(2, "GET /b HTTP/1.1"), "and again on a fresh one");
    assert_eq!(h.counter(RETRIES, &[("service", "shop"), ("pool", "blue"), ("reason", "reused_closed")]), 1);
    assert_eq!(h.counter(RETRIES, &[("reason", "connect")]), 0);
}

#[tokio::test(start_paused = true)]
async fn a_post_with_a_body_whose_reused_connection_closed_unanswered_gets_502() {
    let _tick = Ticker::start();
    let b = RawUpstream::spawn(1).await;
    let h = Handler::new(&config(&[b.address()]));
    assert_eq!(h.get_text("/").await, ok("conn-1"));
    let post = Request::post("/orders").header("host", "shop").body(Full::new(Bytes::from("hello"))).unwrap();
    let (status, body) = text(h.proxy.handle(post).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.unwrap().contains("pool \"blue\""));
    assert_eq!(b.connections(), 1, "not sent again");
    assert_eq!(h.counter(RETRIES, &[("reason", "reused_closed")]), 0);
}

#[tokio::test(start_paused = true)]
async fn a_get_whose_fresh_connection_closed_unanswered_gets_502() {
    let _tick = Ticker::start();
    let b = RawUpstream::spawn(0).await;
    let h = Handler::new(&config(&[b.address()]));
    assert_eq!(h.get_text("/").await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(b.connections(), 1, "a new connection closing is the backend's answer, not a stale one");
    assert_eq!(h.counter(RETRIES, &[("reason", "reused_closed")]), 0);
}

/// An address nothing listens on.
async fn refused_address() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test(start_paused = true)]
async fn a_refused_connect_goes_to_another_backend_and_ejects_with_growing_back_off() {
    let _tick = Ticker::start();
    let live = Upstream::spawn("live").await;
    let h = Handler::new(&config(&[refused_address().await, live.address()]));
    let dead = h.router.load().service("shop").unwrap().pools[0].backends[0].clone();
    for (round, backoff) in [(1, 1000), (2, 2000)] {
        // Each request picks one of the two at random: send until the dead one was tried.
        let mut sent = 0;
        while dead.is_healthy() {
            assert_eq!(h.get_text("/").await, ok("live"), "every request is answered");
            sent += 1;
            assert!(sent < 64, "the dead backend was never picked");
        }
        let ejected = Instant::now();
        assert_eq!(h.counter(RETRIES, &[("reason", "connect")]), round);
        sleep_until(ejected + Duration::from_millis(backoff - 100)).await;
        assert!(!dead.is_healthy(), "round {round}: still ejected");
        sleep_until(ejected + Duration::from_millis(backoff + 100)).await;
        assert!(dead.is_healthy(), "round {round}: back after {backoff} ms");
    }
}
