//! When accept fails for want of file descriptors (EMFILE), the admin listener
//! backs off instead of retrying in a busy loop, and serves again once
//! descriptors are free. Its own test binary: it lowers the process's fd limit.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::start;
use std::time::Duration;
use switchyard_admin::Limits;
use switchyard_test_support::cpu_while_out_of_descriptors;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failing_with_emfile_backs_off_and_recovers() {
    let a = start(Limits::default(), "").await;
    // A busy retry loop burns a core for the whole window; backing off uses next to none.
    let window = Duration::from_millis(500);
    let (used, mut client) = cpu_while_out_of_descriptors(a.addr, b"GET /healthz HTTP/1.0\r\n\r\n", window).await;
    assert!(used < window / 4, "accept retried in a busy loop: {used:?} CPU in {window:?}");

    // Descriptors are back: the waiting client is served.
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"), "{answer}");
}
