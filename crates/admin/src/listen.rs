//! The admin listener: HTTP/1.1 only, bounded. Headers must arrive within a
//! timeout (also on an idle keep-alive connection), at most so many
//! connections are open at once (at the limit it stops accepting until one
//! closes), accept errors such as EMFILE back off instead of spinning, and a
//! client that half-closes after its request still gets the answer. A
//! connection is accepted once its first bytes are in (`TCP_DEFER_ACCEPT`).

use crate::api::{self, AdminState};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use switchyard_proxy::Acceptor;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The admin listener's bounds (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; the next one waits in the backlog.
    pub max_connections: usize,
    /// Time to receive a request's headers, and the longest idle keep-alive wait.
    pub header_timeout: Duration,
}

impl Default for Limits {
    /// 256 connections, 10 s header timeout.
    fn default() -> Limits {
        Limits { max_connections: 256, header_timeout: Duration::from_secs(10) }
    }
}

/// Accepts and serves connections until `shutdown` resolves. Connections
/// already open are left to finish.
pub async fn run(listener: TcpListener, state: Arc<AdminState>, limits: Limits, shutdown: impl Future<Output = ()>) {
    defer_accept(&listener);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).half_close(true).keep_alive(true);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    let mut acceptor = Acceptor::new(listener, slots, "admin");
    while let Some((stream, peer, permit)) = acceptor.next(shutdown.as_mut()).await {
        let (state, builder) = (state.clone(), builder.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(api::handle(&state, req).await) }
            });
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(error = %e, %peer, "admin connection error");
            }
            drop(permit);
        });
    }
}

/// How long the kernel holds a connection that has sent nothing before handing it
/// over anyway (then `header_timeout` runs as for any other).
#[cfg(any(target_os = "linux", target_os = "android"))]
const DEFER_SECS: libc::c_int = 1;

/// Wakes this thread once a call's first bytes are in, rather than at the handshake
/// and again when they come (nginx's `listen … deferred`): a switch call costs one
/// wake-up of the admin thread, not two, and on a host whose cores are busy each
/// wake-up can wait a few hundred microseconds for one (`benches/switch_dip.py`).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
fn defer_accept(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    let seconds = DEFER_SECS;
    // SAFETY: an open socket descriptor, and an int option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const seconds).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, "TCP_DEFER_ACCEPT not set on the admin listener; connections are taken at the handshake");
    }
}

/// Elsewhere the option does not exist: connections are taken at the handshake.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn defer_accept(_: &TcpListener) {}
