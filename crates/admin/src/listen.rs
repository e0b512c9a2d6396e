//! The admin listener: HTTP/1.1 only, bounded. Headers must arrive within a
//! timeout (also on an idle keep-alive connection), at most so many
//! connections are open at once (at the limit it stops accepting until one
//! closes), accept errors such as EMFILE back off instead of spinning, and a
//! client that half-closes after its request still gets the answer.

use crate::api::{self, AdminState};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Pause after a failed accept (EMFILE, ENFILE, ENOBUFS…) before the next try.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).half_close(true).keep_alive(true);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        // Take a slot first: at the limit nothing is accepted until a connection closes.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, backoff = ?ACCEPT_BACKOFF, "admin accept failed; backing off");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
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
