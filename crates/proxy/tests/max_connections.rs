//! `max_connections`: at the limit the listener stops accepting until a
//! connection closes, and `switchyard_client_connections` counts the open ones.
//! Alone in its test binary: the gauge is process-wide.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::time::Duration;
use switchyard_test_support::{RawConn, TestProxy, Upstream, assert_eventually, config_from};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn at_max_connections_a_new_client_waits_until_one_closes() {
    let metrics = switchyard_metrics::install().unwrap();
    let open = || {
        let text = metrics.render();
        let line = text.lines().find(|l| l.starts_with("switchyard_client_connections{listener=\"http\"}"));
        line.and_then(|l| l.rsplit(' ').next()).unwrap_or("none").to_owned()
    };
    let up = Upstream::spawn("blue").await;
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\nmax_connections = 2\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        up.address()
    ));
    let proxy = TestProxy::start(&cfg).await;
    let mut first = RawConn::open(proxy.addr).await;
    let mut second = RawConn::open(proxy.addr).await;
    for c in [&mut first, &mut second] {
        assert!(c.send(GET).await);
        assert_eq!(c.response().await.unwrap().status, 200);
    }
    assert_eq!(open(), "2");

    // The kernel completes the third handshake (backlog), but the proxy does not
    // accept it: its request waits. A proxy that served it would answer at once.
    let mut third = RawConn::open(proxy.addr).await;
    assert!(third.send(GET).await);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), third.response()).await.is_err(),
        "served past max_connections"
    );
    assert_eq!(open(), "2");

    drop(first);
    let r = tokio::time::timeout(Duration::from_secs(10), third.response()).await.expect("never served");
    assert_eq!(r.unwrap().status, 200);
    assert_eventually!(open() == "2", "gauge: {}", open());
    drop((second, third));
    assert_eventually!(open() == "0", "gauge after all closed: {}", open());
}
