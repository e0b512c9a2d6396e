//! When accept fails for want of file descriptors (EMFILE), the admin listener
//! backs off instead of retrying in a busy loop, and serves again once
//! descriptors are free. Its own test binary: it lowers the process's fd limit.

#![allow(clippy::unwrap_used, unsafe_code)] // test helpers fail loudly; libc calls for rlimit and CPU time

mod common;

use common::start;
use std::time::Duration;
use switchyard_admin::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r
}

fn set_nofile(r: libc::rlimit) {
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failing_with_emfile_backs_off_and_recovers() {
    let a = start(Limits::default(), "").await;
    // A client socket made while descriptors are free: connecting it needs no new one.
    let socket = TcpSocket::new_v4().unwrap();
    let old = nofile();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    set_nofile(libc::rlimit { rlim_cur: open + 16, rlim_max: old.rlim_max });
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    // In the backlog; the listener cannot accept it: every accept fails with EMFILE.
    let mut client = socket.connect(a.addr).await.unwrap();
    client.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.unwrap();

    // A busy retry loop burns a core for the whole window; backing off uses next to none.
    // (A rate over time: there is no event to await instead of this sleep.)
    let window = Duration::from_millis(500);
    let before = cpu_time();
    tokio::time::sleep(window).await;
    let used = cpu_time() - before;
    drop(filler);
    set_nofile(old);
    assert!(used < window / 4, "accept retried in a busy loop: {used:?} CPU in {window:?}");

    // Descriptors are back: the waiting client is served.
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"), "{answer}");
}
