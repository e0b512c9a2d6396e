//! HTTP/1 upstream connections driven inside the client connection's own task.
//!
//! Each backend keeps idle keep-alive connections per worker (`idle`). A request
//! checks one out (or connects), and its future polls the connection itself until
//! the response head arrives; the response body then polls it while the client
//! reads. When the body has been read to its end the connection goes back on the
//! stack. So a request never crosses to another task and back — what hyper-util's
//! pooled client does, with a wake-up and a queue hand-off each way (see
//! `ARCHITECTURE.md`). h2c pools and upgrades still use that client (`client.rs`).

use crate::body::RequestBody;
use crate::exchange::{self, Progress, Timer, after};
use crate::idle::{self, IdleConns, Slot};
use crate::wire::{Heard, Wire};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use switchyard_config::Timeouts;
use switchyard_metrics::PoolMetrics;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// One upstream connection: the request sender and the connection state machine it feeds.
pub(crate) struct Lease {
    send: http1::SendRequest<RequestBody>,
    /// `None` once the connection has ended (never polled again after that). Boxed
    /// once per connection, so a request moves a pointer, not the whole state.
    conn: Option<Box<http1::Connection<TokioIo<Wire>, RequestBody>>>,
    /// Whether the backend sent anything since it was last reset.
    heard: Heard,
    /// The exchange clocks of every request on this connection.
    pub(crate) timer: Timer,
    /// Its place under the backend's connection cap, if there is one.
    _slot: Option<Slot>,
    /// The runtime whose IO driver the socket is registered with: only its tasks
    /// may drive it.
    pub(crate) runtime: Option<tokio::runtime::Id>,
}

impl Lease {
    /// Lets the connection write and read what it can; false once it has ended.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(conn) = &mut self.conn else { return false };
        match Pin::new(&mut **conn).poll(cx) {
            Poll::Pending => true,
            Poll::Ready(r) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                self.conn = None;
                false
            }
        }
    }

    /// Ready for another request (after being driven once since the last one ended).
    fn reusable(&mut self, cx: &mut Context<'_>) -> bool {
        self.drive(cx) && self.send.is_ready()
    }

    /// Still open (not ended, not closed by hyper).
    pub(crate) fn is_open(&self) -> bool {
        self.conn.is_some() && !self.send.is_closed()
    }

    /// Going idle: no task's waker stays registered with its timer.
    pub(crate) fn park(&mut self) {
        self.timer.park();
    }
}

/// Why a request got no response head.
#[expect(clippy::large_enum_variant, reason = "returned by value once per failed attempt; boxing would allocate")]
pub(crate) enum SendError {
    /// No connection could be made; the request never left and comes back.
    Connect(std::io::Error, Request<RequestBody>),
    /// The backend is at `max_upstream_connections` and none came free in time.
    Busy,
    /// The head did not come within `timeouts.request`, or nothing moved for `timeouts.idle`.
    Timeout,
    /// The connection failed or closed before the head arrived.
    Http(hyper::Error),
}

/// Where one request goes: a backend's connections and the service's settings.
pub(crate) struct Target<'a> {
    pub(crate) conns: &'a IdleConns,
    pub(crate) addr: &'a str,
    pub(crate) timeouts: &'a Timeouts,
    pub(crate) metrics: &'a PoolMetrics,
}

/// Sends `req` (origin-form URI, `Host` set) on an idle connection or a new one,
/// driving it in this task until the response head arrives. A request that an idle
/// connection could not take (it had just closed) moves to the next one; a body-less
/// idempotent request whose reused connection was closed before any answer is sent
/// once more, on a fresh connection (SPEC §3).
pub(crate) async fn send(
    to: &Target<'_>,
    mut req: Request<RequestBody>,
    progress: Option<&Progress>,
) -> Result<(Response<Incoming>, Lease), SendError> {
    let mut fresh = false;
    loop {
        let (mut lease, reused) = match obtain(to, fresh).await {
            Ok(got) => got,
            Err(Obtain::Busy) => return Err(SendError::Busy),
            Err(Obtain::Refused(e)) => return Err(SendError::Connect(e, req)),
            Err(Obtain::Handshake(e)) => return Err(SendError::Http(e)),
        };
        // The copy a retry needs, made only when a retry is allowed.
        let spare = (reused && !fresh && retryable(&req)).then(|| head_of(&req));
        if spare.is_some() {
            lease.heard.reset();
        }
        let start = Instant::now();
        let result = {
            let mut response = pin!(lease.send.try_send_request(req));
            poll_fn(|cx| {
                lease.drive(cx);
                if let Poll::Ready(r) = response.as_mut().poll(cx) {
                    return Poll::Ready(Some(r));
                }
                let at = exchange::head_deadline(progress, start, to.timeouts);
                lease.timer.poll_until(at, cx).map(|()| None)
            })
            .await
        };
        match result {
            Some(Ok(resp)) => return Ok((resp, lease)),
            // The connection is dropped, so closed: its answer may still come.
            None => return Err(SendError::Timeout),
            Some(Err(mut e)) => match e.take_message() {
                Some(back) if reused => req = back,
                _ => {
                    let e = e.into_error();
                    match spare {
                        Some(again) if closed_unanswered(&e) && !lease.heard.any() => {
                            tracing::debug!(backend = to.addr, error = %e, "reused connection closed unanswered; retrying on a fresh one");
                            to.metrics.retry_reused_closed();
                            req = again;
                            fresh = true;
                        }
                        _ => return Err(SendError::Http(e)),
                    }
                }
            },
        }
    }
}

/// Methods a request may be repeated with (RFC 9110 §9.2.2).
fn retryable(req: &Request<RequestBody>) -> bool {
    use http_body::Body as _;
    matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
        && req.body().is_end_stream()
}

/// A body-less copy of the request head.
fn head_of(req: &Request<RequestBody>) -> Request<RequestBody> {
    let mut copy = Request::new(RequestBody::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// The backend closed (or reset) the connection without a complete answer.
fn closed_unanswered(e: &hyper::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    e.is_incomplete_message()
        || std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted))
}

pub(crate) enum Obtain {
    Busy,
    Refused(std::io::Error),
    Handshake(hyper::Error),
}

/// What the pool offers without waiting.
enum Offer<C> {
    Idle(C),
    New(Option<Slot>),
}

fn offer<C>(
    conns: &IdleConns,
    me: Option<tokio::runtime::Id>,
    fresh: bool,
    checkout: fn(&IdleConns, tokio::runtime::Id) -> Option<C>,
) -> Option<Offer<C>> {
    if !fresh && let Some(conn) = me.and_then(|me| checkout(conns, me)) {
        return Some(Offer::Idle(conn));
    }
    conns.limit().reserve().ok().map(Offer::New)
}

async fn obtain(to: &Target<'_>, fresh: bool) -> Result<(Lease, bool), Obtain> {
    obtain_with(to, fresh, false, checkout, |slot| connect(to.addr, to.timeouts.connect, slot)).await
}

/// A connection for one request (and whether it was reused): the newest idle one of
/// this runtime (unless a `fresh` one is needed), else a new one. At
/// `max_upstream_connections` the request waits up to `timeouts.connect` for one to
/// come back or close. Both HTTP/1 clients (hyper's, the HTTP/1 path's: `raw`) use it;
/// at the cap an idle connection of the other kind makes room like one of another runtime.
pub(crate) async fn obtain_with<C, F: Future<Output = Result<C, Connect>>>(
    to: &Target<'_>,
    fresh: bool,
    raw: bool,
    checkout: fn(&IdleConns, tokio::runtime::Id) -> Option<C>,
    connect: impl FnOnce(Option<Slot>) -> F,
) -> Result<(C, bool), Obtain> {
    let me = idle::runtime();
    let mut deadline = None;
    let slot = loop {
        match offer(to.conns, me, fresh, checkout) {
            Some(Offer::Idle(conn)) => return Ok((conn, true)),
            Some(Offer::New(slot)) => break slot,
            None => {}
        }
        // At the cap. Register before looking again, so no return or close is missed.
        let waiter = to.conns.limit().waiter();
        let mut freed = pin!(waiter.notified());
        freed.as_mut().enable();
        match offer(to.conns, me, fresh, checkout) {
            Some(Offer::Idle(conn)) => return Ok((conn, true)),
            Some(Offer::New(slot)) => break slot,
            None => {}
        }
        // An idle connection this runtime cannot use (or, for a fresh start, any) makes room.
        if to.conns.close_one(me, fresh, raw) {
            continue;
        }
        let at = *deadline.get_or_insert_with(|| after(Instant::now(), to.timeouts.connect));
        if tokio::time::timeout_at(at, freed).await.is_err() {
            return Err(Obtain::Busy);
        }
    };
    match connect(slot).await {
        Ok(conn) => Ok((conn, false)),
        Err(Connect::Refused(e)) => Err(Obtain::Refused(e)),
        Err(Connect::Handshake(e)) => Err(Obtain::Handshake(e)),
    }
}

/// The newest idle connection of runtime `me` that is still open and ready.
fn checkout(conns: &IdleConns, me: tokio::runtime::Id) -> Option<Lease> {
    let mut cx = Context::from_waker(Waker::noop());
    while let Some((mut lease, since)) = conns.take(me) {
        if since.elapsed() < conns.idle_timeout() && lease.reusable(&mut cx) {
            return Some(lease);
        }
    }
    None
}

pub(crate) enum Connect {
    Refused(std::io::Error),
    Handshake(hyper::Error),
}

/// A TCP connection to `addr` within `timeout`, with Nagle off (small requests and
/// answers go out at once).
pub(crate) async fn dial(addr: &str, timeout: Duration) -> Result<TcpStream, Connect> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Connect::Refused(e)),
        Err(_) => return Err(Connect::Refused(std::io::ErrorKind::TimedOut.into())),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

pub(crate) async fn connect(addr: &str, timeout: Duration, slot: Option<Slot>) -> Result<Lease, Connect> {
    let stream = dial(addr, timeout).await?;
    let (wire, heard) = Wire::new(stream);
    let (send, conn) = http1::Builder::new().handshake(TokioIo::new(wire)).await.map_err(Connect::Handshake)?;
    Ok(Lease {
        send,
        conn: Some(Box::new(conn)),
        heard,
        timer: Timer::default(),
        _slot: slot,
        runtime: idle::runtime(),
    })
}
