//! `switchyard demo` starts, answers from blue, switches with `ctl`, and exits
//! cleanly on SIGTERM.

#![allow(clippy::unwrap_used, unsafe_code)]

mod common;
use common::{BIN, ctl};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use switchyard_test_support::Conn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_blue_switches_to_green_and_stops_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut find = |prefix: &str| loop {
        let line = lines.next().expect("demo output ended").unwrap();
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            break rest.split_whitespace().next().unwrap().trim_start_matches("http://").to_owned();
        }
    };
    let proxy: std::net::SocketAddr = find("proxy:").parse().unwrap();
    let admin_addr: std::net::SocketAddr = find("admin:").parse().unwrap();
    let admin = format!("http://{admin_addr}");
    let dashboard = find("dashboard:");
    assert_eq!(dashboard, format!("{admin_addr}/ui"));
    let (_, page) = Conn::open(admin_addr).await.get("127.0.0.1", "/ui").await;
    assert!(page.contains("<title>switchyard</title>"), "{page}");
    let mut c = Conn::open(proxy).await;
    let (_, body) = c.get("localhost", "/").await;
    assert!(body.starts_with("blue-"), "{body}");
    let (code, out, err) = tokio::task::block_in_place(|| ctl(&admin, &["switch", "demo", "green"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("green"), "{out}");
    assert!(c.get("localhost", "/").await.1.starts_with("green-"));
    let (code, out, err) = tokio::task::block_in_place(|| ctl(&admin, &["drain", "demo", "blue", "--wait", "5s"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "pool blue drained: nothing in flight");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGTERM) }, 0);
    assert_eq!(tokio::task::block_in_place(|| child.wait()).unwrap().code(), Some(0));
}
