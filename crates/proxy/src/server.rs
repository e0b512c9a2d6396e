//! The listener loop: accept, serve HTTP/1.1 and h2c on each connection, and shut
//! down gracefully (stop accepting, let in-flight requests finish).

use crate::access_log::AccessLog;
use crate::forward::Proxy;
use crate::routes::Router;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// Per-listener protocol settings (from `[listener]`).
#[derive(Clone)]
pub struct ServerOptions {
    /// Time to receive a request head, on a fresh connection or between keep-alive requests.
    pub header_timeout: Duration,
    /// Larger request heads are answered 431.
    pub max_header_bytes: usize,
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub proto: &'static str,
    /// Where access log lines go.
    pub access_log: AccessLog,
}

impl ServerOptions {
    /// Options from a `[listener]` table.
    pub fn from_listener(l: &switchyard_config::Listener) -> ServerOptions {
        ServerOptions {
            header_timeout: l.header_timeout,
            max_header_bytes: l.max_header_bytes,
            proto: "http",
            access_log: AccessLog::off(),
        }
    }
}

/// Serves `listener` until `shutdown` resolves, then waits for open connections to
/// finish their in-flight requests. Bound the wait with a timeout around this call.
pub async fn serve(listener: TcpListener, router: Router, opts: ServerOptions, shutdown: impl Future<Output = ()>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .max_buf_size(opts.max_header_bytes.max(8192))
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let proxy = Proxy::new(router.clone(), peer.ip(), opts.proto, opts.access_log.clone());
                let svc = service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, Infallible>(proxy.handle(req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, %peer, "client connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}
