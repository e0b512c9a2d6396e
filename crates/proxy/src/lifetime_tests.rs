//! The client timers on tokio's paused clock, over in-memory connections (no
//! kernel sockets, so the clock only moves when every task waits): the times
//! asserted are the deadlines themselves. The connection is served as the
//! listener serves it (same builder, IO wrapper, activity and `drive`), by a
//! handler that answers `ok`, or holds `/hold` until the test lets it go.

use super::*;
use crate::access_log::AccessLog;
use crate::activity::{Conn, Counted, InFlight, Watched};
use crate::body::ResponseBody;
use crate::forward::Proxy;
use crate::table::RoutingTable;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::Semaphore;

const HEADER: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(30);
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

struct Served {
    client: DuplexStream,
    gate: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    opened: Instant,
}

fn serve() -> Served {
    serve_with(ClientTimeouts { header: HEADER, idle: IDLE })
}

fn serve_with(timeouts: ClientTimeouts) -> Served {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (_, router) = crate::routes::channel(RoutingTable::empty());
    let proxy = Proxy::new(router, [127, 0, 0, 1].into(), "http", AccessLog::off());
    let conn = Arc::new(Conn { proxy, activity: Activity::new(), _slot: None });
    let gate = Arc::new(Semaphore::new(0));
    let (stop, stopped) = watch::channel(false);
    let (shared, held) = (conn.clone(), gate.clone());
    let svc = service_fn(move |req: Request<Incoming>| {
        let request = InFlight::begin(shared.clone(), req.version());
        let gate = held.clone();
        async move {
            if req.uri().path() == "/hold" {
                gate.acquire().await.unwrap().forget();
            }
            Ok::<_, Infallible>(Response::new(Counted::new(ResponseBody::text("ok"), request)))
        }
    });
    tokio::spawn(async move {
        let builder = crate::server::builder(65536);
        let served = builder.serve_connection_with_upgrades(TokioIo::new(Watched::new(server, conn.clone())), svc);
        drive(served, |c| c.graceful_shutdown(), &conn.activity, timeouts, stopped, ([127, 0, 0, 1], 1).into()).await;
    });
    Served { client, gate, stop, opened: Instant::now() }
}

/// Reads one `ok` response off an HTTP/1 connection.
async fn response(c: &mut DuplexStream) -> String {
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n\r\nok") {
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a response: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

/// Time from `since` until the server side closes, with nothing more sent.
async fn closed(c: &mut DuplexStream, since: Instant) -> Duration {
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "unexpected bytes: {}", String::from_utf8_lossy(&rest));
    since.elapsed()
}

fn secs(d: Duration, want: u64) {
    assert!(
        d >= Duration::from_secs(want) && d < Duration::from_secs(want) + Duration::from_millis(10),
        "{d:?}, want {want} s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_fresh_connection_is_closed_at_header_timeout() {
    let mut s = serve();
    secs(closed(&mut s.client, s.opened).await, 5);
}

#[tokio::test(start_paused = true)]
async fn a_first_head_must_be_complete_within_header_timeout_of_opening() {
    let mut s = serve();
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    secs(closed(&mut s.client, s.opened).await, 5);
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed_at_idle_timeout() {
    let mut s = serve();
    s.client.write_all(GET).await.unwrap();
    assert!(response(&mut s.client).await.starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    secs(closed(&mut s.client, idle).await, 30);
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_head_gets_header_timeout_from_its_first_byte() {
    let mut s = serve();
    s.client.write_all(GET).await.unwrap();
    response(&mut s.client).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    s.client.write_all(GET).await.unwrap();
    response(&mut s.client).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    s.client.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    let began = Instant::now();
    secs(closed(&mut s.client, began).await, 5);
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_is_never_cut_by_the_client_timers() {
    let mut s = serve();
    s.client.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    s.gate.add_permits(1);
    assert!(response(&mut s.client).await.starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    secs(closed(&mut s.client, idle).await, 30);
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_idle_connections_and_lets_requests_finish() {
    let mut idle = serve();
    idle.client.write_all(GET).await.unwrap();
    response(&mut idle.client).await;
    let _ = idle.stop.send(true);
    secs(closed(&mut idle.client, Instant::now()).await, 0);

    let mut busy = serve();
    busy.client.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = busy.stop.send(true);
    tokio::time::sleep(Duration::from_secs(100)).await;
    busy.gate.add_permits(1);
    assert!(response(&mut busy.client).await.starts_with("HTTP/1.1 200"));
    secs(closed(&mut busy.client, Instant::now()).await, 0);
}

#[tokio::test(start_paused = true)]
async fn h2_waits_for_requests_after_its_preface_and_goes_away_after_idle_timeout() {
    let s = serve();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s.client)).await.unwrap();
    let (ended_tx, ended) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = conn.await;
        let _ = ended_tx.send(Instant::now());
    });
    // Past header_timeout: the preface came in time, so the connection waits.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let resp = send.send_request(Request::get("http://x/").body(Full::<Bytes>::default()).unwrap()).await.unwrap();
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "ok");
    let idle = Instant::now();
    let ended = ended.await.unwrap();
    secs(ended - idle, 30);
}

#[tokio::test(start_paused = true)]
async fn an_incomplete_h2_preface_is_held_to_header_timeout() {
    let mut s = serve();
    s.client.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    secs(closed(&mut s.client, s.opened).await, 5);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_shorter_than_header_timeout_starts_when_the_response_ends() {
    let mut s = serve_with(ClientTimeouts { header: Duration::from_secs(60), idle: Duration::from_secs(2) });
    s.client.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    s.gate.add_permits(1);
    response(&mut s.client).await;
    let idle = Instant::now();
    secs(closed(&mut s.client, idle).await, 2);
}
