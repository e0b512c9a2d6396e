//! WebSocket upgrades on the HTTP/1 path itself (not handed to hyper): the
//! request goes up with exactly `Upgrade: websocket` and `Connection: upgrade`, the
//! tunnel starts only after the backend's `101`, bytes either side sent early are
//! carried, the tunnel is counted on its pool until it closes, and any other
//! `Upgrade` is forwarded as a plain request.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use switchyard_test_support::{RawConn, Switching, TestProxy, assert_eventually, config_from};

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

async fn proxy(backend: &Switching) -> TestProxy {
    TestProxy::start(&config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"app\"\nhosts = [\"app\"]\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        backend.address()
    )))
    .await
}

fn upgraded(proxy: &TestProxy) -> u64 {
    proxy.router.load().service("app").unwrap().pool("blue").unwrap().stats.upgraded()
}

#[tokio::test]
async fn a_websocket_upgrade_is_tunnelled_after_the_101_with_early_bytes_both_ways() {
    let backend = Switching::spawn().await;
    let p = proxy(&backend).await;
    let mut c = RawConn::open(p.addr).await;
    // The client does not wait for the 101 before its first frame.
    let request = format!(
        "GET /chat HTTP/1.1\r\nHost: app\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n{KEY}\r\n"
    );
    assert!(c.send(format!("{request}early-from-client").as_bytes()).await);
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 101);
    assert_eq!(r.head, "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: upgrade");
    assert_eq!(c.bytes(Switching::EARLY.len()).await.unwrap(), Switching::EARLY);
    assert_eq!(c.bytes(17).await.unwrap(), b"early-from-client", "what the client sent early went up");
    assert!(c.send(b"\x81\x04ping").await);
    assert_eq!(c.bytes(6).await.unwrap(), b"\x81\x04ping");
    assert_eq!(
        backend.heads(),
        [format!(
            "GET /chat HTTP/1.1\r\n{KEY}Host: app\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\
             X-Forwarded-Host: app\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        )]
    );
    assert_eq!(upgraded(&p), 1);
    drop(c);
    assert_eventually!(upgraded(&p) == 0, "a closed tunnel is still counted");
}

#[tokio::test]
async fn an_upgrade_to_anything_but_websocket_goes_up_as_a_plain_request() {
    let backend = Switching::spawn().await;
    let p = proxy(&backend).await;
    let mut c = RawConn::open(p.addr).await;
    let h2c = "GET /a HTTP/1.1\r\nHost: app\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
               HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n";
    // `Upgrade: websocket` without `Connection: upgrade` asks nothing either.
    let half = "GET /b HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\n\r\n";
    assert!(c.send(format!("{h2c}{half}").as_bytes()).await);
    for _ in 0..2 {
        let r = c.response().await.unwrap();
        assert_eq!((r.status, r.text()), (200, "plain".to_owned()));
    }
    let forwarded =
        "Host: app\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app\r\n\r\n";
    assert_eq!(backend.heads(), [format!("GET /a HTTP/1.1\r\n{forwarded}"), format!("GET /b HTTP/1.1\r\n{forwarded}")]);
    assert_eq!(upgraded(&p), 0);
}
