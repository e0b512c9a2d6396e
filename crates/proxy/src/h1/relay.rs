//! One forwarded request on the HTTP/1 path: a backend connection (idle or new;
//! a refused connect is tried once on another backend, a reused connection that
//! closed unanswered once on a fresh one), the head written with the body's first
//! bytes in one write, then the rest of the upload and the answer at once (the
//! response head read and rebuilt for the client, its body copied as its framing
//! says). Counted, timed and logged like hyper's path.

use super::body::{BodyUp, Sent, Stop, answer_framing, framing, read, relay, send_body, take_body, write_all};
use super::buf::Buf;
use super::io::Io;
use super::parse::{self, Body, MAX_HEADERS};
use super::prepare::{Forward, own_answer};
use super::upstream::{self, Raw};
use super::write;
use crate::access_log::Pending;
use crate::error::ProxyError;
use crate::exchange::{Progress, head_deadline};
use crate::forward::{Route, counted};
use crate::request_check::Reject;
use crate::tracker::Tracker;
use crate::upgrade::Open;
use crate::upstream::{Obtain, Target};
use httparse::EMPTY_HEADER;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Largest response head accepted from a backend.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How a response head came (or did not).
enum Heard {
    /// Parsed and rebuilt into the client's buffer.
    Head {
        status: u16,
        len: usize,
        body: Body,
        keep_alive: bool,
        /// The rebuilt head says `Connection: close`.
        closing: bool,
    },
    /// A `101` to a WebSocket upgrade, rebuilt into the client's buffer: a tunnel follows.
    Switching {
        len: usize,
    },
    /// A 1xx interim answer (not 101), rebuilt into the client's buffer; the final one follows.
    Interim {
        status: u16,
        len: usize,
    },
    /// Closed or reset before one byte of an answer.
    Nothing,
    /// Closed, reset or unparsable after some bytes.
    Broken,
    Timeout,
}

/// What the answer side of one attempt ended with.
enum Reply {
    /// No final response head, and why.
    NoHead(Heard),
    /// The answer went to the client: to its end (`Some(extra)`: whether the backend
    /// sent more than its body) or broken off (`None`); `closing` if its head said
    /// `Connection: close`.
    Relayed { relayed: Option<bool>, keep_alive: bool, body: Body, closing: bool },
    /// The backend switched to WebSocket, and its `101` went to the client.
    Switched,
}

/// How the client connection goes on after an exchange.
pub(crate) enum Next {
    KeepAlive,
    /// After a complete answer: closed cleanly (TLS `close_notify`, lingering).
    Close,
    /// The answer broke off after its head went out: the connection is reset, so the
    /// client cannot take a cut body (close-delimited, or over TLS) for a whole one.
    Cut,
    /// The backend switched protocols (its `101` went to the client): both
    /// connections now carry a tunnel.
    Upgrade(Box<Switched>),
}

/// A WebSocket upgrade the backend accepted.
pub(crate) struct Switched {
    /// The backend's connection (never reused).
    pub(crate) upstream: Raw,
    /// What the backend sent after its `101`.
    pub(crate) early: Buf,
    /// Where the tunnel belongs.
    pub(crate) route: Route,
    /// The tunnel counted on its pool.
    pub(crate) open: Open,
}

impl Next {
    fn after(keep_alive: bool) -> Next {
        if keep_alive { Next::KeepAlive } else { Next::Close }
    }
}

/// Where the request body's upload stands when the exchange ends.
enum Upstate {
    Done,
    /// Still going: the backend answered before reading all of it.
    Going,
    Failed(Sent),
}

/// Forwards `fwd` (its body's first bytes, and then the rest, read from `input` and
/// `client`) and relays the answer; whether the client connection may carry another
/// request. The upload and the answer run at once: a backend may answer (and
/// stream) before it has read the whole body.
///
/// `stopping`: the listener is shutting down, so the answer says `Connection: close`.
pub(crate) async fn forward(fwd: Forward, client: &impl Io, input: &mut Buf, stopping: bool) -> Next {
    let Forward {
        mut route,
        keep_alive,
        head_method,
        body,
        retryable,
        max_body,
        expects_continue,
        upgrade,
        http10,
        mut upstream_head,
        mut log,
        start,
        ..
    } = fwd;
    let set_cookie = route.set_cookie.take();
    // The proxy's own answers keep a connection open only for HTTP/1.1 (they never
    // say keep-alive, which an HTTP/1.0 client would need).
    let own_keep = keep_alive && !http10;
    let mut request = framing(body);
    let mut sent = 0u64;
    // The request is accepted (routed, within the limits): a client waiting to be
    // told may send its body now. The backend is not asked (`Expect` does not go
    // up), as nginx does.
    if expects_continue && input.unread().is_empty() {
        let patience = route.service.timeouts.idle;
        if write_all(client, b"HTTP/1.1 100 Continue\r\n\r\n", patience).await.is_err() {
            return Next::after(fail(&route, Failed::ClientGone, log, start, false, head_method, client).await);
        }
    }
    // The body's first bytes go up in the same write as the head.
    let body_done = match take_body(&mut request, input, &mut upstream_head, &mut sent, max_body) {
        Ok(done) => done,
        Err(f) => return Next::after(fail(&route, f, log, start, false, head_method, client).await),
    };
    let mut other_tried = false;
    let mut fresh = false;
    loop {
        let pool = route.pool();
        let backend = route.backend().clone();
        let timeouts = &route.service.timeouts;
        let to =
            Target { conns: &pool.conns[route.backend], addr: backend.address(), timeouts, metrics: &pool.metrics };
        // In flight from now, also while connecting or waiting at the connection cap.
        let mut tracker = Tracker::begin(route.service.clone(), route.pool, route.backend, start);
        let (raw, reused) = match upstream::obtain(&to, fresh).await {
            Ok(got) => got,
            Err(Obtain::Refused(e)) => {
                tracing::debug!(error = %e, backend = backend.address(), "upstream connect failed");
                backend.connect_failed();
                pool.metrics.upstream_error("connect");
                drop(tracker);
                if !other_tried && let Some(next) = pool.pick(Some(route.backend)) {
                    other_tried = true;
                    pool.metrics.retry_connect();
                    route = Route { service: route.service.clone(), pool: route.pool, backend: next, set_cookie: None };
                    continue;
                }
                return Next::after(
                    fail(&route, Failed::Unreachable, log, start, own_keep && body_done, head_method, client).await,
                );
            }
            Err(e) => {
                drop(tracker);
                let f = if matches!(e, Obtain::Busy) { Failed::Busy } else { Failed::Upstream };
                return Next::after(fail(&route, f, log, start, own_keep && body_done, head_method, client).await);
            }
        };
        // Only a body still going up is followed (no body: both clocks run from now).
        let progress = (!body_done).then(Progress::new);
        let answered = Answered::default();
        let mut answer_buf = Buf::take();
        let (reply, upstate) = if write_all(&raw.stream, &upstream_head.data, timeouts.idle).await.is_err() {
            (Some(Reply::NoHead(Heard::Nothing)), if body_done { Upstate::Done } else { Upstate::Going })
        } else {
            let rest = BodyUp {
                framing: &mut request,
                input: &mut *input,
                sent: &mut sent,
                limit: max_body,
                idle: timeouts.idle,
            };
            // Boxed (one allocation, for requests with a body to stream only): inline, its
            // state would be part of every connection's future, idle ones included.
            let streaming = progress.as_ref().map(|p| Box::pin(send_body(rest, &raw.stream, client, p)));
            let upload = pin!(async {
                match streaming {
                    None => Sent::Done,
                    Some(f) => f.await,
                }
            });
            let reply = pin!(answer(Answering {
                upstream: &raw.stream,
                client,
                up: &mut answer_buf,
                out: &mut upstream_head,
                asked: Asked { head_method, upgrade, http10 },
                close: !keep_alive || stopping,
                set_cookie: set_cookie.as_deref().map(str::as_bytes),
                route: &route,
                progress: progress.as_ref(),
                sent_at: Instant::now(),
                answered: &answered,
                tracker: &mut tracker,
                log: &mut log,
            }));
            both(upload, reply, body_done, &answered.head).await
        };
        let uploaded = matches!(upstate, Upstate::Done);
        match reply {
            // The upload failed on the client's side: answered if nothing was sent yet, else cut.
            None => {
                if answered.head.load(Relaxed) {
                    return Next::Cut;
                }
                drop(tracker);
                let f = match upstate {
                    Upstate::Failed(Sent::Client(f)) => f,
                    Upstate::Failed(Sent::Timeout) => {
                        pool.metrics.upstream_error("timeout");
                        Failed::Timeout
                    }
                    _ => Failed::Upstream,
                };
                return Next::after(fail(&route, f, log, start, false, head_method, client).await);
            }
            Some(Reply::NoHead(Heard::Nothing)) if reused && !fresh && retryable && !answered.any() => {
                tracing::debug!(
                    backend = backend.address(),
                    "reused connection closed unanswered; retrying on a fresh one"
                );
                pool.metrics.retry_reused_closed();
                fresh = true;
            }
            Some(Reply::NoHead(heard)) => {
                let f = if matches!(heard, Heard::Timeout) { Failed::Timeout } else { Failed::Upstream };
                pool.metrics.upstream_error(if matches!(f, Failed::Timeout) { "timeout" } else { "reset" });
                drop(tracker);
                return Next::after(fail(&route, f, log, start, own_keep && uploaded, head_method, client).await);
            }
            Some(Reply::Switched) => {
                // Counted as a tunnel before it stops counting in flight: a drain
                // never sees the pool empty in between.
                let open = Open::new(route.pool().stats.clone());
                drop(tracker);
                return Next::Upgrade(Box::new(Switched { upstream: raw, early: answer_buf, route, open }));
            }
            Some(Reply::Relayed { relayed, keep_alive: up_keep, body, closing }) => {
                if relayed == Some(false) && uploaded && up_keep {
                    tracker.conns().put_raw(raw);
                }
                return match relayed {
                    None => Next::Cut,
                    Some(_) if keep_alive && body != Body::UntilClose && uploaded && !closing => Next::KeepAlive,
                    Some(_) => Next::Close,
                };
            }
        }
    }
}

/// Runs the upload and the answer of one attempt together, until the answer ends
/// (or the upload fails on the client's side, which ends the exchange).
///
/// Once the answer's head went to the client (`answered`), a client that stops
/// uploading only stops the upload; the answer goes on.
/// Both come pinned by the caller: moved in and pinned here, each would take its
/// room twice in the connection's future.
async fn both(
    mut upload: Pin<&mut impl Future<Output = Sent>>,
    mut reply: Pin<&mut impl Future<Output = Reply>>,
    uploaded: bool,
    answered: &AtomicBool,
) -> (Option<Reply>, Upstate) {
    let mut state = if uploaded { Upstate::Done } else { Upstate::Going };
    loop {
        tokio::select! {
            biased;
            r = &mut reply => return (Some(r), state),
            s = &mut upload, if matches!(state, Upstate::Going) => match s {
                Sent::Done => state = Upstate::Done,
                // The backend may still answer (it may have closed after answering).
                Sent::Upstream => state = Upstate::Failed(Sent::Upstream),
                Sent::Timeout if answered.load(Relaxed) => state = Upstate::Failed(Sent::Timeout),
                other => return (None, Upstate::Failed(other)),
            },
        }
    }
}

/// What the answer side of one attempt works with.
struct Answering<'a, C> {
    upstream: &'a TcpStream,
    client: &'a C,
    up: &'a mut Buf,
    out: &'a mut Buf,
    asked: Asked,
    close: bool,
    set_cookie: Option<&'a [u8]>,
    route: &'a Route,
    /// The request body's progress, if it had to go up after the head.
    progress: Option<&'a Progress>,
    /// When the head (with the body's first bytes) went up.
    sent_at: Instant,
    answered: &'a Answered,
    tracker: &'a mut Tracker,
    log: &'a mut Option<Box<Pending>>,
}

/// What of the answer went to the client so far.
#[derive(Default)]
struct Answered {
    /// A 1xx interim answer (the request can no longer be sent again).
    interim: AtomicBool,
    /// The final head (the proxy can no longer answer in its stead).
    head: AtomicBool,
}

impl Answered {
    fn any(&self) -> bool {
        self.interim.load(Relaxed) || self.head.load(Relaxed)
    }
}

/// Interim (1xx) answers passed on for one request; a backend sending more is broken.
const MAX_INTERIM: usize = 8;

/// Reads the response head (passing 1xx interim answers on), records it, and relays
/// the answer to the client.
async fn answer<C: Io>(a: Answering<'_, C>) -> Reply {
    let timeouts = &a.route.service.timeouts;
    let mut interims = 0;
    let heard = loop {
        let cookie = a.set_cookie;
        let deadline = || head_deadline(a.progress, a.sent_at, timeouts);
        // A client whose body is not all read when the answer comes cannot go on on
        // this connection: the answer says so.
        let closing = || a.close || a.progress.is_some_and(|p| !p.is_done());
        match read_head(a.upstream, a.up, &deadline, a.asked, &closing, cookie, a.out).await {
            Heard::Interim { .. } if interims == MAX_INTERIM => break Heard::Broken,
            // An HTTP/1.0 client is sent no interim answer (RFC 9110 §15.2); the request
            // still cannot be sent again.
            Heard::Interim { len, .. } if a.asked.http10 => {
                interims += 1;
                a.answered.interim.store(true, Relaxed);
                a.up.consume(len);
            }
            Heard::Interim { status, len } => {
                interims += 1;
                a.answered.interim.store(true, Relaxed);
                a.up.consume(len);
                if write_all(a.client, &a.out.data, timeouts.idle).await.is_err() {
                    // Recorded under the last status that went out.
                    a.tracker.set_status(status);
                    a.tracker.set_log(a.log.take());
                    return Reply::Relayed { relayed: None, keep_alive: false, body: Body::None, closing: true };
                }
            }
            heard => break heard,
        }
    };
    let (status, len) = match heard {
        Heard::Head { status, len, .. } => (status, len),
        Heard::Switching { len } => (101, len),
        heard => return Reply::NoHead(heard),
    };
    // The final answer (or the switch): the proxy can no longer answer in its stead.
    a.answered.head.store(true, Relaxed);
    let route = a.route;
    route.backend().connect_ok();
    a.tracker.set_status(status);
    if let Some(l) = a.log {
        l.routed(&route.service, route.pool, Some(route.backend));
    }
    a.tracker.set_log(a.log.take());
    a.up.consume(len);
    let Heard::Head { body, keep_alive, closing, .. } = heard else {
        // Switching: its `101` goes out, then the connection is the tunnel's.
        if write_all(a.client, &a.out.data, timeouts.idle).await.is_err() {
            return Reply::Relayed { relayed: None, keep_alive: false, body: Body::None, closing: true };
        }
        return Reply::Switched;
    };
    let framing = answer_framing(body, a.asked.http10);
    let relayed = relay(framing, a.upstream, a.up, a.out, a.client, a.tracker, timeouts.idle).await;
    Reply::Relayed { relayed, keep_alive, body, closing }
}

/// What the request asked that shapes its answer.
#[derive(Clone, Copy)]
struct Asked {
    /// `HEAD`: the answer has no body.
    head_method: bool,
    /// A WebSocket upgrade: a `101` may come.
    upgrade: bool,
    /// From an HTTP/1.0 client: no interim answers, no chunked framing.
    http10: bool,
}

/// Reads the response head into `up`, rebuilding it for the client into `out`.
async fn read_head(
    upstream: &TcpStream,
    up: &mut Buf,
    deadline: &(dyn Fn() -> Instant + Sync),
    asked: Asked,
    close: &(dyn Fn() -> bool + Sync),
    set_cookie: Option<&[u8]>,
    out: &mut Buf,
) -> Heard {
    loop {
        if let Some(heard) = parse_head(up, asked, close(), set_cookie, out) {
            return heard;
        }
        match read(upstream, up, deadline()).await {
            Ok(0) | Err(Stop::Io) if up.unread().is_empty() => return Heard::Nothing,
            Ok(0) | Err(Stop::Io) => return Heard::Broken,
            // The upload moved the deadline on while this read waited.
            Err(Stop::Timeout) if Instant::now() < deadline() => {}
            Err(Stop::Timeout) => return Heard::Timeout,
            Ok(_) => {}
        }
    }
}

/// The response head at the front of `up`, rebuilt for the client into `out`; `None`
/// while it is incomplete. A plain function, so the header array lives on the stack
/// for the parse only, never in the connection's future.
fn parse_head(up: &Buf, asked: Asked, close: bool, set_cookie: Option<&[u8]>, out: &mut Buf) -> Option<Heard> {
    if up.unread().is_empty() {
        return None;
    }
    let mut lines = [EMPTY_HEADER; MAX_HEADERS];
    match parse::response(up.unread(), &mut lines, MAX_RESPONSE_HEAD, asked.head_method) {
        Ok(None) => None,
        Ok(Some(h)) if h.status == 101 && asked.upgrade => {
            out.clear();
            write::response_head(&mut out.data, &h, false, set_cookie, false);
            Some(Heard::Switching { len: h.len })
        }
        // Nothing was asked to switch protocols (the proxy tunnels WebSocket only).
        // (Nor are there statuses under 100.)
        Ok(Some(h)) if h.status == 101 || h.status < 100 => Some(Heard::Broken),
        Ok(Some(h)) if h.status < 200 => {
            out.clear();
            write::response_head(&mut out.data, &h, false, None, false);
            Some(Heard::Interim { status: h.status, len: h.len })
        }
        Ok(Some(h)) => {
            out.clear();
            // A chunked answer goes to an HTTP/1.0 client to the close.
            let close = close || (asked.http10 && h.body == Body::Chunked);
            write::response_head(&mut out.data, &h, close, set_cookie, asked.http10);
            Some(Heard::Head { status: h.status, len: h.len, body: h.body, keep_alive: h.keep_alive, closing: close })
        }
        Err(e) => {
            tracing::debug!(refusal = e.reason(), "unreadable response head");
            Some(Heard::Broken)
        }
    }
}

/// Failures answered by the proxy itself.
pub(crate) enum Failed {
    Unreachable,
    Upstream,
    Timeout,
    Busy,
    /// The request body grew past `max_request_body` (413).
    TooLarge(u64),
    /// The request body broke its chunked framing (400).
    BadBody,
    /// The client closed before its body was complete (nothing to answer).
    ClientGone,
}

/// Answers a failed exchange (502/503/504), counted on the pool and logged; to
/// `HEAD` without a body.
async fn fail(
    route: &Route,
    f: Failed,
    mut log: Option<Box<Pending>>,
    start: std::time::Instant,
    keep_alive: bool,
    head_method: bool,
    client: &impl Io,
) -> bool {
    let p = route.pool();
    let (service, pool, backend) = (route.service.name.clone(), p.name.clone(), route.backend().address().into());
    let (status, text) = match f {
        Failed::TooLarge(limit) => (413, format!("{}\n", Reject::BodyTooLarge { service, pool, limit })),
        Failed::BadBody => (400, "400 malformed chunked request body\n".to_owned()),
        Failed::ClientGone => (499, String::new()),
        upstream => {
            tracing::warn!(%service, %pool, %backend, "upstream request failed");
            let e = match upstream {
                Failed::Unreachable => ProxyError::Unreachable { service, pool, backend },
                Failed::Timeout => ProxyError::Timeout { service, pool, backend },
                Failed::Busy => ProxyError::Busy { service, pool, backend },
                _ => ProxyError::Upstream { service, pool, backend },
            };
            (e.status().as_u16(), format!("{e}\n"))
        }
    };
    let text = if head_method { String::new() } else { text };
    counted(p, status, start);
    if let Some(mut l) = log.take() {
        l.routed(&route.service, route.pool, Some(route.backend));
        l.finish(status, text.len() as u64, start.elapsed());
    }
    if status == 499 {
        return false;
    }
    let mut out = Buf::take();
    own_answer(&mut out.data, status, &text, !keep_alive);
    write_all(client, &out.data, route.service.timeouts.idle).await.is_ok() && keep_alive
}
