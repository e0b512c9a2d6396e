//! Through a real client socket (hyper's own request body): a GET whose reused
//! keep-alive upstream connection was closed unanswered is sent again on a fresh
//! one; a POST with a body in the same situation gets 502.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use switchyard_test_support::{Conn, RawUpstream, TestProxy, config_from};

async fn proxy_to(b: &RawUpstream) -> TestProxy {
    TestProxy::start(&config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        b.address()
    )))
    .await
}

#[tokio::test]
async fn a_client_get_survives_a_backend_closing_its_kept_alive_connection() {
    let b = RawUpstream::spawn(1).await;
    let proxy = proxy_to(&b).await;
    let mut c = Conn::open(proxy.addr).await;
    assert_eq!(c.get("shop", "/").await, (StatusCode::OK, "conn-1".into()));
    assert_eq!(c.get("shop", "/").await, (StatusCode::OK, "conn-2".into()));
    assert_eq!(b.connections(), 2);
}

#[tokio::test]
async fn a_client_post_is_not_sent_twice() {
    let b = RawUpstream::spawn(1).await;
    let proxy = proxy_to(&b).await;
    let mut c = Conn::open(proxy.addr).await;
    assert_eq!(c.get("shop", "/").await, (StatusCode::OK, "conn-1".into()));
    let post = Request::post("/orders").header("host", "shop").body(Full::new(Bytes::from("hello"))).unwrap();
    assert_eq!(c.send(post).await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(b.connections(), 1);
}
