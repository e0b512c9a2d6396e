//! In-process tests with real upstreams on 127.0.0.1:0: routing, switching,
//! streaming and the answers the proxy makes itself.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use switchyard_config::Config;
use switchyard_test_support::{Conn, TestProxy, Upstream, config_from};
use tokio::net::{TcpListener, TcpStream};

fn list(ups: &[&Upstream]) -> String {
    ups.iter().map(|u| format!("\"{}\"", u.address())).collect::<Vec<_>>().join(", ")
}

fn blue_green(blue: &[&Upstream], green: &[&Upstream], traffic: &str, extra: &str) -> Config {
    config_from(&format!(
        r#"
[listener]
address = "127.0.0.1:0"
[[service]]
name = "shop"
{extra}
[service.traffic]
{traffic}
[service.pools.blue]
backends = [{}]
[service.pools.green]
backends = [{}]
"#,
        list(blue),
        list(green)
    ))
}

/// One service whose only pool, blue, has these backends.
fn blue_only(backends: &[String]) -> Config {
    let list = backends.iter().map(|b| format!("\"{b}\"")).collect::<Vec<_>>().join(", ");
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [{list}]\n"
    ))
}

/// A port nothing listens on.
async fn dead_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn active_pool_takes_all_traffic_and_uses_both_backends() {
    let (b1, b2, g1) =
        (Upstream::spawn("blue-1").await, Upstream::spawn("blue-2").await, Upstream::spawn("green-1").await);
    let proxy = TestProxy::start(&blue_green(&[&b1, &b2], &[&g1], "active = \"blue\"", "")).await;
    let mut c = Conn::open(proxy.addr).await;
    for _ in 0..100 {
        let (status, body) = c.get("shop.example.com", "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with("blue-"), "{body}");
    }
    assert_eq!(g1.hits(), 0);
    assert!(b1.hits() > 10 && b2.hits() > 10, "both blue backends used: {} {}", b1.hits(), b2.hits());
}

#[tokio::test]
async fn weights_90_10_split_within_tolerance() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&blue_green(&[&b], &[&g], "weights = { blue = 90, green = 10 }", "")).await;
    let mut c = Conn::open(proxy.addr).await;
    let mut green = 0;
    for _ in 0..2000 {
        if c.get("x", "/").await.1 == "green" {
            green += 1;
        }
    }
    // Expected 200, standard deviation ~13.4: ±60 is over four deviations.
    assert!((140..=260).contains(&green), "green got {green} of 2000");
}

#[tokio::test]
async fn switch_moves_next_request_on_same_connection() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&blue_green(&[&b], &[&g], "active = \"blue\"", "")).await;
    let mut c = Conn::open(proxy.addr).await;
    assert_eq!(c.get("x", "/").await.1, "blue");
    proxy.apply(&blue_green(&[&b], &[&g], "active = \"green\"", ""));
    assert_eq!(c.get("x", "/").await.1, "green");
    assert!(c.is_open());
}

#[tokio::test]
async fn in_flight_request_finishes_on_blue_after_switch() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&blue_green(&[&b], &[&g], "active = \"blue\"", "")).await;
    let mut held = Conn::open(proxy.addr).await;
    let pending = tokio::spawn(async move { held.get("x", "/hold").await });
    assert_eq!(b.arrived().await, "/hold");
    proxy.apply(&blue_green(&[&b], &[&g], "active = \"green\"", ""));
    let mut c = Conn::open(proxy.addr).await;
    assert_eq!(c.get("x", "/").await.1, "green");
    b.release(1);
    let (status, body) = pending.await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "blue"));
}

const TEN_MB: usize = 10 * 1024 * 1024;

#[tokio::test]
async fn upload_streams_before_the_body_ends() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&blue_green(&[&b], &[&g], "active = \"blue\"", "")).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(1);
    let body = StreamBody::new(ReceiverStream(rx));
    let req = Request::post("/upload").header("host", "x").header("content-length", TEN_MB).body(body).unwrap();
    let resp = tokio::spawn(send.send_request(req));
    let chunk = Bytes::from(vec![b'u'; 1024 * 1024]);
    tx.send(Ok(Frame::data(chunk.clone()))).await.unwrap();
    // The upstream sees the first megabyte while nine are still unsent.
    assert_eq!(b.arrived().await, "/upload");
    for _ in 1..10 {
        tx.send(Ok(Frame::data(chunk.clone()))).await.unwrap();
    }
    drop(tx);
    let resp = resp.await.unwrap().unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, format!("blue {TEN_MB}"));
}

#[tokio::test]
async fn download_streams_before_the_body_ends() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&blue_green(&[&b], &[&g], "active = \"blue\"", "")).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("/download?bytes={TEN_MB}&pause=1"))
        .header("host", "x")
        .body(Full::<Bytes>::default())
        .unwrap();
    let mut body = send.send_request(req).await.unwrap().into_body();
    // The first chunk arrives while the upstream is paused on the rest.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(!first.is_empty());
    b.release(1);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(first.len() + rest.len(), TEN_MB);
}

#[tokio::test]
async fn unreachable_pool_answers_502_naming_service_and_pool() {
    let g = Upstream::spawn("green").await;
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\", \"{}\"]\n[service.pools.green]\nbackends = [\"{}\"]\n",
        dead_port().await,
        dead_port().await,
        g.address()
    ));
    let proxy = TestProxy::start(&cfg).await;
    let (status, body) = Conn::open(proxy.addr).await.get("x", "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("service \"shop\" pool \"blue\""), "{body}");
}

#[tokio::test]
async fn one_dead_backend_is_covered_by_the_other() {
    let alive = Upstream::spawn("blue-alive").await;
    let cfg = blue_only(&[dead_port().await, alive.address()]);
    let proxy = TestProxy::start(&cfg).await;
    let mut c = Conn::open(proxy.addr).await;
    for _ in 0..50 {
        assert_eq!(c.get("x", "/").await, (StatusCode::OK, "blue-alive".to_owned()));
    }
}

#[tokio::test]
async fn post_body_survives_the_connect_retry() {
    let alive = Upstream::spawn("blue-alive").await;
    let cfg = blue_only(&[dead_port().await, alive.address()]);
    let proxy = TestProxy::start(&cfg).await;
    let mut c = Conn::open(proxy.addr).await;
    for _ in 0..20 {
        let req = Request::post("/upload").header("host", "x").body(Full::new(Bytes::from_static(b"12345"))).unwrap();
        assert_eq!(c.send(req).await, (StatusCode::OK, "blue-alive 5".to_owned()));
    }
}

#[tokio::test]
async fn slow_backend_answers_504() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy =
        TestProxy::start(&blue_green(&[&b], &[&g], "active = \"blue\"", "[service.timeouts]\nrequest = \"200ms\""))
            .await;
    let (status, body) = Conn::open(proxy.addr).await.get("x", "/hold").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(body.contains("service \"shop\" pool \"blue\""), "{body}");
}

#[tokio::test]
async fn unknown_host_answers_404_and_hosts_pick_services() {
    let (shop, api) = (Upstream::spawn("shop").await, Upstream::spawn("api").await);
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n\
         [[service]]\nname = \"shop\"\nhosts = [\"shop.example.com\"]\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n\
         [[service]]\nname = \"api\"\nhosts = [\"api.example.com\"]\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        shop.address(),
        api.address()
    ));
    let proxy = TestProxy::start(&cfg).await;
    let mut c = Conn::open(proxy.addr).await;
    assert_eq!(c.get("Shop.Example.com:8080", "/").await.1, "shop");
    assert_eq!(c.get("api.example.com", "/").await.1, "api");
    let (status, body) = c.get("other.example.com", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("other.example.com"), "{body}");
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_and_forwarded_for_appended() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&blue_green(&[&b], &[&g], "active = \"blue\"", "")).await;
    let mut c = Conn::open(proxy.addr).await;
    let req = Request::get("/headers")
        .header("host", "shop.example.com")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .header("proxy-authorization", "Basic abc")
        .header("te", "trailers")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-app", "kept")
        .body(Full::default())
        .unwrap();
    let (_, echoed) = c.send(req).await;
    let has = |line: &str| echoed.lines().any(|l| l == line);
    assert!(has("host: shop.example.com"), "{echoed}");
    assert!(has("x-forwarded-for: 203.0.113.7, 127.0.0.1"), "{echoed}");
    assert!(has("x-forwarded-proto: http"), "{echoed}");
    assert!(has("x-forwarded-host: shop.example.com"), "{echoed}");
    assert!(has("x-app: kept"), "{echoed}");
    for gone in ["x-private", "proxy-authorization", "te:"] {
        assert!(!echoed.contains(gone), "{gone} leaked: {echoed}");
    }
}

#[tokio::test]
async fn h2c_prior_knowledge_request_is_forwarded() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&blue_green(&[&b], &[&g], "active = \"blue\"", "")).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    for path in ["/", "/headers"] {
        let req = Request::get(format!("http://shop.example.com{path}")).body(Full::<Bytes>::default()).unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        if path == "/" {
            assert_eq!(body, "blue");
        } else {
            assert!(body.contains("host: shop.example.com"), "{body}");
        }
    }
}

#[tokio::test]
async fn override_header_picks_a_pool_when_configured() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let cfg = blue_green(&[&b], &[&g], "active = \"blue\"", "override = { header = \"x-switchyard-pool\" }");
    let proxy = TestProxy::start(&cfg).await;
    let mut c = Conn::open(proxy.addr).await;
    let req = Request::get("/").header("host", "x").header("x-switchyard-pool", "green").body(Full::default()).unwrap();
    assert_eq!(c.send(req).await.1, "green");
    let req =
        Request::get("/").header("host", "x").header("x-switchyard-pool", "purple").body(Full::default()).unwrap();
    assert_eq!(c.send(req).await.1, "blue");
}

/// An mpsc receiver as a body stream.
struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn h2c_pool_carries_bodies_both_ways_and_trailers() {
    let (b, g) = (Upstream::spawn("blue-h2").await, Upstream::spawn("green").await);
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"grpc\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\nprotocol = \"h2c\"\n[service.pools.green]\nbackends = [\"{}\"]\n",
        b.address(),
        g.address()
    ));
    let proxy = TestProxy::start(&cfg).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    // Upload over h2 → h2c upstream.
    let body = Full::new(Bytes::from(vec![b'u'; 300_000]));
    let req = Request::post("http://grpc.example.com/upload").body(body).unwrap();
    let resp = send.send_request(req).await.unwrap();
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, "blue-h2 300000");
    // The upstream saw HTTP/2 with TE: trailers restored.
    let req = Request::get("http://grpc.example.com/headers")
        .header("te", "trailers")
        .body(Full::<Bytes>::default())
        .unwrap();
    let echoed = send.send_request(req).await.unwrap().into_body().collect().await.unwrap().to_bytes();
    let echoed = String::from_utf8(echoed.to_vec()).unwrap();
    assert!(echoed.lines().any(|l| l == "te: trailers"), "{echoed}");
    assert!(echoed.lines().any(|l| l == "version: HTTP/2.0"), "{echoed}");
    // Trailers come back to an HTTP/2 client.
    let req = Request::get("http://grpc.example.com/trailers").body(Full::<Bytes>::default()).unwrap();
    let collected = send.send_request(req).await.unwrap().into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().and_then(|t| t.get("grpc-status")).map(|v| v.to_str().unwrap()), Some("0"));
    assert_eq!(collected.to_bytes(), "blue-h2");
}
