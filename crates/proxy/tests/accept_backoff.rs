//! When accept fails for want of file descriptors (EMFILE), the proxy's listener
//! backs off instead of retrying in a busy loop, keeps its `max_connections`
//! place for the next try, and serves the waiting client once descriptors are
//! free. Its own test binary: it lowers the process's fd limit.

#![allow(clippy::unwrap_used, unsafe_code)] // test helpers fail loudly; libc calls for rlimit and CPU time

use std::time::Duration;
use switchyard_test_support::{TestProxy, Upstream, config_from};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut r) }, 0);
    r
}

fn set_nofile(r: libc::rlimit) {
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const r) }, 0);
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut u) }, 0);
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap()) + Duration::from_micros(u64::try_from(t.tv_usec).unwrap())
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failing_with_emfile_backs_off_and_recovers() {
    let up = Upstream::spawn("blue").await;
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\nmax_connections = 1\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        up.address()
    ));
    let proxy = TestProxy::start(&cfg).await;
    // A client socket made while descriptors are free: connecting it needs no new one.
    let socket = TcpSocket::new_v4().unwrap();
    let old = nofile();
    let open = u64::try_from(std::fs::read_dir("/proc/self/fd").unwrap().count()).unwrap();
    set_nofile(libc::rlimit { rlim_cur: open + 16, rlim_max: old.rlim_max });
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    // In the backlog; the listener cannot accept it: every accept fails with EMFILE.
    let mut client = socket.connect(proxy.addr).await.unwrap();
    client.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").await.unwrap();

    // A busy retry loop burns a core for the whole window; backing off uses next to none.
    // (A rate over time: there is no event to await instead of this sleep.)
    let window = Duration::from_millis(500);
    let before = cpu_time();
    tokio::time::sleep(window).await;
    let used = cpu_time() - before;
    drop(filler);
    set_nofile(old);
    assert!(used < window / 4, "accept retried in a busy loop: {used:?} CPU in {window:?}");

    // Descriptors are back: the waiting client is served (with the one place max_connections allows).
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.ends_with("blue"), "{answer}");
}
