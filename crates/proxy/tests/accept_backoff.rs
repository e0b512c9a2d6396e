//! When accept fails for want of file descriptors (EMFILE), the proxy's listener
//! backs off instead of retrying in a busy loop, keeps its `max_connections`
//! place for the next try, and serves the waiting client once descriptors are
//! free. Its own test binary: it lowers the process's fd limit.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::time::Duration;
use switchyard_test_support::{TestProxy, Upstream, config_from, cpu_while_out_of_descriptors};
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failing_with_emfile_backs_off_and_recovers() {
    let up = Upstream::spawn("blue").await;
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\nmax_connections = 1\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        up.address()
    ));
    let proxy = TestProxy::start(&cfg).await;
    // A busy retry loop burns a core for the whole window; backing off uses next to none.
    let window = Duration::from_millis(500);
    let (used, mut client) =
        cpu_while_out_of_descriptors(proxy.addr, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", window).await;
    assert!(used < window / 4, "accept retried in a busy loop: {used:?} CPU in {window:?}");

    // Descriptors are back: the waiting client is served (with the one place max_connections allows).
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_string(&mut answer)).await.unwrap().unwrap();
    // (hyper answers an HTTP/1.0 client in HTTP/1.0, the HTTP/1 path in HTTP/1.1, as nginx does.)
    assert!(answer.starts_with("HTTP/1.") && answer[8..].starts_with(" 200 "), "{answer}");
    assert!(answer.ends_with("blue"), "{answer}");
}
