//! A server whose `accept` fails with EMFILE: this process runs out of file
//! descriptors while a client waits in the listen backlog. For the tests that
//! check a listener backs off instead of retrying in a busy loop.

#![allow(unsafe_code)] // getrlimit/setrlimit/getrusage have no safe std equivalent

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into the place given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut r) }, 0);
    r
}

fn set_nofile(r: libc::rlimit) {
    // SAFETY: setrlimit only reads the rlimit given.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const r) }, 0);
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it in.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut u) }, 0);
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap()) + Duration::from_micros(u64::try_from(t.tv_usec).unwrap())
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Connects to `addr` and sends `request` while this process has no descriptor
/// left, so every `accept` of the server fails with EMFILE. Returns the CPU time
/// the whole process used over `window` in that state (a rate over time: there is
/// no event to await instead of the sleep), and the client, with descriptors free
/// again so the server can now serve it. Call it from a test binary of its own:
/// it lowers the process's descriptor limit for the window.
pub async fn cpu_while_out_of_descriptors(addr: SocketAddr, request: &[u8], window: Duration) -> (Duration, TcpStream) {
    // Made while descriptors are free: connecting it needs no new one.
    let socket = TcpSocket::new_v4().unwrap();
    let old = nofile();
    let open = u64::try_from(std::fs::read_dir("/proc/self/fd").unwrap().count()).unwrap();
    set_nofile(libc::rlimit { rlim_cur: open + 16, rlim_max: old.rlim_max });
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    // In the backlog; the listener cannot accept it.
    let mut client = socket.connect(addr).await.unwrap();
    client.write_all(request).await.unwrap();
    let before = cpu_time();
    tokio::time::sleep(window).await;
    let used = cpu_time() - before;
    drop(filler);
    set_nofile(old);
    (used, client)
}
