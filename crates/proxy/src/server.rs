//! The listener loop: accept, optionally terminate TLS, serve HTTP/1.1 and h2 on
//! each connection (with upgrades), and shut down gracefully (stop accepting, let
//! in-flight requests finish).

use crate::access_log::AccessLog;
use crate::forward::Proxy;
use crate::routes::Router;
use crate::tls::TlsSettings;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// Per-listener protocol settings (from `[listener]`).
#[derive(Clone)]
pub struct ServerOptions {
    /// Time to receive a request head, on a fresh connection or between keep-alive
    /// requests (and, with TLS, to finish the handshake).
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

/// Serves plain HTTP/1.1 and h2c on `listener` until `shutdown` resolves, then
/// waits for open connections to finish their in-flight requests. Bound the wait
/// with a timeout around this call.
pub async fn serve(listener: TcpListener, router: Router, opts: ServerOptions, shutdown: impl Future<Output = ()>) {
    run(listener, router, opts, None, shutdown).await;
}

/// Like `serve`, terminating TLS with the current `tls` settings per connection.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    opts: ServerOptions,
    tls: TlsSettings,
    shutdown: impl Future<Output = ()>,
) {
    run(listener, router, ServerOptions { proto: "https", ..opts }, Some(tls), shutdown).await;
}

async fn run(
    listener: TcpListener,
    router: Router,
    opts: ServerOptions,
    tls: Option<TlsSettings>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .max_buf_size(opts.max_header_bytes.max(8192))
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
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
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                match &tls {
                    None => {
                        tokio::spawn(connection(builder, watcher, stream, proxy, peer));
                    }
                    Some(tls) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(tls.load_full());
                        let limit = opts.header_timeout;
                        tokio::spawn(async move {
                            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                                Ok(Ok(io)) => connection(builder, watcher, io, proxy, peer).await,
                                Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        });
                    }
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn connection<I>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    io: I,
    proxy: Proxy,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let proxy = Arc::new(proxy);
    let svc = service_fn(move |req| {
        let proxy = proxy.clone();
        // Boxed: hyper keeps a connection's request future in place of its size for the
        // connection's life, and moves it in for every request. A box is 8 bytes to move
        // and lets idle connections hold nothing of it (~4.5 KiB each otherwise).
        Box::pin(async move { Ok::<_, Infallible>(proxy.handle(req).await) })
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(error = %e, %peer, "client connection ended with an error");
    }
}
