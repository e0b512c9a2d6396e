//! HTTP/1 over TLS on the proxy's own path (the rustls session taken over after
//! the handshake): keep-alive, bodies both ways larger than a TLS record,
//! pipelining, a refusal that ends with `close_notify`, `Expect: 100-continue`, a
//! WebSocket tunnel, and a request handed to hyper over the same session (to a
//! service with an h2c pool).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use rcgen::{CertificateParams, KeyPair};
use std::net::SocketAddr;
use std::sync::Arc;
use switchyard_proxy::{RoutingTable, ServerOptions};
use switchyard_test_support::{RawConn, Upstream, config_from};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A TLS proxy in front of `upstream`, and a client config trusting its certificate.
async fn tls_proxy(upstream: &Upstream) -> (SocketAddr, TlsConnector) {
    tls_proxy_to(&upstream.address(), "").await
}

/// A TLS proxy in front of the backend at `backend` (`extra`: more of its service's
/// config), and a client config trusting its certificate.
async fn tls_proxy_to(backend: &str, extra: &str) -> (SocketAddr, TlsConnector) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
    let dir = std::env::temp_dir().join(format!("sy-h1-tls-{}-{}", std::process::id(), backend.replace(':', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let server = switchyard_proxy::tls::load(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let config = config_from(&format!(
        r#"
[listener]
address = "127.0.0.1:0"
[[service]]
name = "app"
[service.traffic]
active = "blue"
[service.pools.blue]
backends = ["{backend}"]
{extra}
"#
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (publisher, router) = switchyard_proxy::channel(RoutingTable::build(&config, None, 1));
    let opts = ServerOptions::from_listener(&config.listener);
    tokio::spawn(async move {
        let _keep = publisher;
        switchyard_proxy::serve_tls(
            listener,
            router,
            opts,
            switchyard_proxy::tls::settings(server),
            std::future::pending(),
        )
        .await;
    });

    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(cert.der().to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    (addr, TlsConnector::from(Arc::new(client)))
}

async fn open(addr: SocketAddr, tls: &TlsConnector) -> RawConn<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    RawConn::over(tls.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap())
}

#[tokio::test]
async fn keep_alive_bodies_and_pipelining_over_tls() {
    let blue = Upstream::spawn("blue").await;
    let (addr, tls) = tls_proxy(&blue).await;
    let mut c = open(addr, &tls).await;

    c.send(b"GET /headers HTTP/1.1\r\nHost: app\r\n\r\n").await;
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("x-forwarded-proto: https"), "{}", r.text());

    // An upload over several TLS records, by length and chunked.
    let body = vec![b'u'; 300_000];
    let mut req = format!("POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    req.extend_from_slice(&body);
    c.send(&req).await;
    assert_eq!(c.response().await.unwrap().text(), "blue 300000");
    let mut req = b"POST /upload HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5 {
        req.extend_from_slice(format!("{:x}\r\n", 50_000).as_bytes());
        req.extend_from_slice(&body[..50_000]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    c.send(&req).await;
    assert_eq!(c.response().await.unwrap().text(), "blue 250000");

    // A download of many records.
    c.send(b"GET /download?bytes=2000000 HTTP/1.1\r\nHost: app\r\n\r\n").await;
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.body.len()), (200, 2_000_000));

    // Two requests in one write, answered in order, on the same connection.
    c.send(b"GET /a HTTP/1.1\r\nHost: app\r\n\r\nGET /headers HTTP/1.1\r\nHost: app\r\n\r\n").await;
    assert_eq!(c.response().await.unwrap().text(), "blue");
    assert!(c.response().await.unwrap().text().contains("x-forwarded-proto: https"));
    assert_eq!(blue.connections(), 1, "one upstream connection, reused");
}

#[tokio::test]
async fn a_refusal_over_tls_ends_with_close_notify() {
    let blue = Upstream::spawn("blue").await;
    let (addr, tls) = tls_proxy(&blue).await;
    let mut c = open(addr, &tls).await;
    c.send(b"POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").await;
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    // A clean TLS end (close_notify), not a bare TCP close: rustls reads 0, not an error.
    let mut rest = Vec::new();
    let n = c.stream.read_to_end(&mut rest).await.expect("the proxy says close_notify before closing");
    assert_eq!(n, 0);
    assert_eq!(blue.hits(), 0);
}

#[tokio::test]
async fn a_request_handed_to_hyper_keeps_the_tls_session() {
    let (blue, h2) = (Upstream::spawn("blue").await, Upstream::spawn("blue-h2").await);
    let grpc = format!(
        "[[service]]\nname = \"grpc\"\nhosts = [\"grpc\"]\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\nprotocol = \"h2c\"\n",
        h2.address()
    );
    let (addr, tls) = tls_proxy_to(&blue.address(), &grpc).await;
    let mut c = open(addr, &tls).await;
    // First on the proxy's own path (with `Expect: 100-continue`, answered by the
    // proxy), then a request to a service with an h2c pool goes to hyper with the
    // session and the bytes read so far, and hyper serves the rest of the connection.
    c.send(b"POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").await;
    assert_eq!(c.response().await.unwrap().status, 100);
    c.send(b"hello").await;
    assert_eq!(c.response().await.unwrap().text(), "blue 5");
    c.send(b"GET / HTTP/1.1\r\nHost: grpc\r\n\r\n").await;
    let r = c.response().await.unwrap();
    assert_eq!(r.text(), "blue-h2");
    // (hyper writes `content-length` in lower case, the HTTP/1 path `Content-Length`.)
    assert!(r.head.contains("\ncontent-length: "), "not hyper's answer: {}", r.head);
    c.send(b"GET /headers HTTP/1.1\r\nHost: app\r\n\r\n").await;
    assert!(c.response().await.unwrap().text().contains("x-forwarded-proto: https"));
}

#[tokio::test]
async fn a_quiet_tls_connection_is_served_again() {
    let blue = Upstream::spawn("blue").await;
    let (addr, tls) = tls_proxy(&blue).await;
    let mut c = open(addr, &tls).await;
    c.send(b"GET /a HTTP/1.1\r\nHost: app\r\n\r\n").await;
    assert_eq!(c.response().await.unwrap().text(), "blue");
    // Quiet for longer than a connection keeps its task (500 ms): it is parked
    // (nothing outside can see that happen, hence a plain wait), then woken by
    // two pipelined requests in one record.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    c.send(b"GET /b HTTP/1.1\r\nHost: app\r\n\r\nGET /headers HTTP/1.1\r\nHost: app\r\n\r\n").await;
    assert_eq!(c.response().await.unwrap().text(), "blue");
    assert!(c.response().await.unwrap().text().contains("x-forwarded-proto: https"));
}

#[tokio::test]
async fn an_answer_cut_off_over_tls_does_not_end_cleanly() {
    use tokio::io::AsyncWriteExt;
    // A backend that answers without a length (the body ends with the connection),
    // sends part of it and then nothing: the proxy gives up after `timeouts.idle`.
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = backend.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        let mut head = vec![0u8; 4096];
        let _ = s.read(&mut head).await.unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\n\r\npartial").await.unwrap();
        std::future::pending::<()>().await;
        drop(s);
    });
    let (addr, tls) = tls_proxy_to(&at, "[service.timeouts]\nidle = \"300ms\"").await;
    let mut c = open(addr, &tls).await;
    c.send(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n").await;
    let mut got = Vec::new();
    let end = c.stream.read_to_end(&mut got).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("partial"), "{got}");
    // No close_notify: the client sees that the body was cut, not that it ended.
    assert!(end.is_err(), "the cut answer looked complete: {end:?}");
}

#[tokio::test]
async fn a_websocket_tunnel_over_tls_carries_bytes_both_ways() {
    let backend = switchyard_test_support::Switching::spawn().await;
    let (addr, tls) = tls_proxy_to(&backend.address(), "").await;
    let mut c = open(addr, &tls).await;
    c.send(b"GET /chat HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").await;
    assert_eq!(c.response().await.unwrap().status, 101);
    let early = switchyard_test_support::Switching::EARLY;
    assert_eq!(c.bytes(early.len()).await.unwrap(), early);
    // More than one TLS record each way.
    let frame = vec![b'w'; 100_000];
    c.send(&frame).await;
    assert_eq!(c.bytes(frame.len()).await.unwrap(), frame);
    assert!(backend.heads()[0].contains("\r\nX-Forwarded-Proto: https\r\n"), "{:?}", backend.heads());
}
