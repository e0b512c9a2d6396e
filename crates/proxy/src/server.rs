//! The listener loop: accept (at most `max_connections` open at once, shared by
//! every worker of the process), optionally terminate TLS, serve HTTP/1.1 and h2
//! on each connection (with upgrades) under the client timers of `lifetime`, and
//! shut down gracefully (stop accepting, let in-flight requests finish).

use crate::accept::Acceptor;
use crate::access_log::AccessLog;
use crate::activity::{Activity, Conn, Counted, InFlight, Slot, Watched};
use crate::forward::Proxy;
use crate::h1;
use crate::lifetime::{self, ClientTimeouts};
use crate::routes::Router;
use crate::tls::TlsSettings;
use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// Per-listener protocol settings (from `[listener]`).
#[derive(Clone)]
pub struct ServerOptions {
    /// Time to receive a request head: the first one from the connection's opening
    /// (HTTP/2: its preface), later ones from their first byte (and, with TLS, to
    /// finish the handshake).
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Larger request heads are answered 431 (HTTP/1 and HTTP/2).
    pub max_header_bytes: usize,
    /// Larger request bodies are answered 413 (or cut once answered); 0 = unlimited.
    pub max_request_body: u64,
    /// Open client connections allowed; clones share it, so every worker (and the
    /// TLS listener) of one process counts against the same `max_connections`.
    pub connections: Arc<Semaphore>,
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
            idle_timeout: l.idle_timeout,
            max_header_bytes: l.max_header_bytes,
            max_request_body: l.max_request_body,
            connections: Arc::new(Semaphore::new(l.max_connections.min(Semaphore::MAX_PERMITS))),
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

/// The connection builder for a listener's protocol settings.
pub(crate) fn builder(max_header_bytes: usize) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // `lifetime` times request heads and idle connections for both protocols.
        .header_read_timeout(None)
        .max_buf_size(max_header_bytes.max(8192))
        // A client that sends its request and shuts its write side still gets the answer.
        .half_close(true)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Over it, h2 answers the stream 431 and resets it; the connection lives on.
        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX));
    builder
}

async fn run(
    listener: TcpListener,
    router: Router,
    opts: ServerOptions,
    tls: Option<TlsSettings>,
    shutdown: impl Future<Output = ()>,
) {
    let _serving = router.serving();
    let builder = Arc::new(builder(opts.max_header_bytes));
    let gauge = switchyard_metrics::client_connections(opts.proto);
    let timeouts = ClientTimeouts { header: opts.header_timeout, idle: opts.idle_timeout };
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut acceptor = Acceptor::new(listener, opts.connections.clone(), opts.proto);
    while let Some((stream, peer, permit)) = acceptor.next(shutdown.as_mut()).await {
        let slot = Slot::new(permit, &gauge);
        spawn_connection(stream, peer, &router, &opts, tls.as_ref(), &builder, timeouts, &stopped, slot);
    }
    drop(acceptor);
    drop(stopped);
    let _ = stop.send(true);
    stop.closed().await;
}

#[allow(clippy::too_many_arguments)]
fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: &Router,
    opts: &ServerOptions,
    tls: Option<&TlsSettings>,
    builder: &Arc<auto::Builder<TokioExecutor>>,
    timeouts: ClientTimeouts,
    stopped: &watch::Receiver<bool>,
    slot: Slot,
) {
    let _ = stream.set_nodelay(true);
    let opened = tokio::time::Instant::now();
    let proxy = Proxy::new(router.clone(), peer.ip(), opts.proto, opts.access_log.clone())
        .with_max_request_body(opts.max_request_body);
    // The place is held by the connection itself, so a WebSocket tunnel that
    // outlives hyper's connection (it keeps the socket) still counts.
    let conn = Arc::new(Conn { proxy, activity: Activity::new(), _slot: Some(slot) });
    let (builder, stopped) = (builder.clone(), stopped.clone());
    match tls {
        None if h1_path() => {
            let max_head = opts.max_header_bytes;
            let client = h1::conn::Client { stream, conn, builder, timeouts, max_head, stopped, peer };
            tokio::spawn(h1::conn::serve(client, opened));
        }
        None => {
            tokio::spawn(async move {
                connection(builder, stopped, stream, conn, timeouts, peer).await;
            });
        }
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.load_full());
            let max_head = opts.max_header_bytes;
            tokio::spawn(async move {
                let io = match tokio::time::timeout(timeouts.header, acceptor.accept(stream)).await {
                    Ok(Ok(io)) => io,
                    Ok(Err(e)) => return tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                };
                // ALPN h2 goes to hyper; HTTP/1 to the proxy's own path, over the same session.
                if io.get_ref().1.alpn_protocol() == Some(b"h2") || !h1_path() {
                    return connection(builder, stopped, io, conn, timeouts, peer).await;
                }
                let (tcp, session) = io.into_inner();
                let stream = h1::tls_io::TlsIo::new(tcp, session);
                let client = h1::conn::Client { stream, conn, builder, timeouts, max_head, stopped, peer };
                h1::conn::serve(client, opened).await;
            });
        }
    }
}

/// Whether HTTP/1 (plain and over TLS) goes through the proxy's own codec (`h1`); set
/// `SWITCHYARD_H1=hyper` to serve it with hyper as before.
pub(crate) fn h1_path() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("SWITCHYARD_H1").map_or(true, |v| v != "hyper"))
}

pub(crate) async fn connection<I>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stopped: watch::Receiver<bool>,
    io: I,
    conn: Arc<Conn>,
    timeouts: ClientTimeouts,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = conn.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        // Counted from the head's arrival until the response body is dropped.
        let request = InFlight::begin(shared.clone(), req.version());
        // Boxed: hyper keeps a connection's request future in place of its size for the
        // connection's life, and moves it in for every request. A box is 8 bytes to move
        // and lets idle connections hold nothing of it (~4.5 KiB each otherwise).
        Box::pin(async move {
            let resp = request.proxy().handle(req).await;
            Ok::<_, Infallible>(resp.map(|body| Counted::new(body, request)))
        })
    });
    let io = TokioIo::new(Watched::new(io, conn.clone()));
    let served = builder.serve_connection_with_upgrades(io, svc);
    lifetime::drive(served, |c| c.graceful_shutdown(), &conn.activity, timeouts, stopped, peer).await;
}
