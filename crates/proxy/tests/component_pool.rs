//! Component tier, paused clock: `max_upstream_connections` (at the cap a request
//! waits up to `timeouts.connect` for a connection to come back or close, then 503)
//! and draining (a request in flight finishes on the pool that took it; that pool's
//! connection is closed, not kept, once it lost its traffic).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Empty;
use std::time::Duration;
use switchyard_config::Config;
use switchyard_proxy::Proxy;
use switchyard_test_support::{Handler, RawEvent, RawUpstream, Ticker, Upstream, config_from, text};
use tokio::task::JoinHandle;
use tokio::time::Instant;

fn capped(backend: &Upstream, cap: usize, timeouts: &str) -> Config {
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\nmax_upstream_connections = {cap}\n[[service]]\nname = \"shop\"\n{timeouts}\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        backend.address()
    ))
}

/// A request on its own task: its status and body text once read to the end.
type Pending = JoinHandle<(StatusCode, Result<String, String>)>;

/// `GET path` on its own task, read to its end.
fn spawn_get(proxy: &Proxy, path: &str) -> Pending {
    let (proxy, req) = (proxy.clone(), Request::get(path).header("host", "shop").body(Empty::<Bytes>::new()).unwrap());
    tokio::spawn(async move { text(proxy.handle(req).await).await })
}

/// One backend behind a cap of one connection, which a held `GET /hold` (`first`)
/// keeps busy: (backend, handler, first).
async fn at_the_cap(timeouts: &str) -> (Upstream, Handler, Pending) {
    let b = Upstream::spawn("blue").await;
    let h = Handler::new(&capped(&b, 1, timeouts));
    let first = spawn_get(&h.proxy, "/hold");
    assert_eq!(b.arrived().await, "/hold");
    (b, h, first)
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_a_request_waits_for_the_connection_to_come_back() {
    let _tick = Ticker::start();
    let (b, h, first) = at_the_cap("").await;
    let second = spawn_get(&h.proxy, "/");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second request waits while the only connection is busy");
    assert_eq!(b.connections(), 1);
    b.release(1);
    assert_eq!(first.await.unwrap(), (StatusCode::OK, Ok("blue".into())));
    assert_eq!(second.await.unwrap(), (StatusCode::OK, Ok("blue".into())));
    assert_eq!(b.connections(), 1, "the second request reused the first one's connection");
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_a_request_gets_503_naming_service_and_pool_after_the_connect_timeout() {
    let _tick = Ticker::start();
    let (b, h, first) = at_the_cap("[service.timeouts]\nconnect = \"500ms\"").await;
    let start = Instant::now();
    let (status, body) = h.get_text("/").await;
    let waited = start.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body = body.unwrap();
    assert!(body.contains("service \"shop\" pool \"blue\"") && body.contains("max_upstream_connections"), "{body}");
    assert!(waited >= Duration::from_millis(500) && waited < Duration::from_millis(700), "503 after {waited:?}");
    b.release(1);
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
    assert_eq!(b.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_a_cap_concurrent_requests_open_their_own_connections() {
    let _tick = Ticker::start();
    let b = Upstream::spawn("blue").await;
    let h = Handler::new(&capped(&b, 0, ""));
    let held: Vec<_> = (0..3).map(|_| spawn_get(&h.proxy, "/hold")).collect();
    for _ in 0..3 {
        assert_eq!(b.arrived().await, "/hold");
    }
    b.release(3);
    for r in held {
        assert_eq!(r.await.unwrap().0, StatusCode::OK);
    }
    assert_eq!(b.connections(), 3);
}

fn two_pools(blue: &RawUpstream, green: &Upstream, active: &str) -> Config {
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"{active}\"\n[service.pools.blue]\nbackends = [\"{}\"]\n[service.pools.green]\nbackends = [\"{}\"]\n",
        blue.address(),
        green.address()
    ))
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_at_cutover_finishes_on_its_pool_whose_connection_then_closes() {
    let _tick = Ticker::start();
    let (blue, green) = (RawUpstream::spawn(usize::MAX).await, Upstream::spawn("green").await);
    let h = Handler::new(&two_pools(&blue, &green, "blue"));
    let held = spawn_get(&h.proxy, "/hold");
    assert_eq!(blue.next().await, RawEvent::Request { conn: 1, line: "GET /hold HTTP/1.1".into() });
    h.apply(&two_pools(&blue, &green, "green"));
    assert_eq!(h.get_text("/").await, (StatusCode::OK, Ok("green".into())), "the next request goes to green");
    blue.release(1);
    assert_eq!(held.await.unwrap(), (StatusCode::OK, Ok("conn-1".into())), "the held one finishes on blue");
    assert_eq!(blue.next().await, RawEvent::Closed { conn: 1 }, "blue's connection is closed, not kept idle");
}
