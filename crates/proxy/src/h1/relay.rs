//! One forwarded request on the HTTP/1 path: a backend connection (idle or new;
//! a refused connect is tried once on another backend, a reused connection that
//! closed unanswered once on a fresh one), the head written in one write, the
//! response head read and rebuilt for the client, and the body copied through
//! pooled buffers as its framing says. Counted, timed and logged like hyper's path.

use super::buf::{Buf, SIZE};
use super::chunked::Chunked;
use super::parse::{self, Body, MAX_HEADERS};
use super::prepare::{Forward, own_answer};
use super::upstream::{self, Raw};
use super::write;
use crate::error::ProxyError;
use crate::exchange::{after, head_deadline};
use crate::forward::{Route, counted};
use crate::request_check::Reject;
use crate::tracker::Tracker;
use crate::upstream::{Obtain, Target};
use httparse::EMPTY_HEADER;
use std::io::ErrorKind;
use tokio::io::AsyncWriteExt;
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
    },
    /// A 1xx interim answer (not 101), rebuilt into the client's buffer; the final one follows.
    Interim {
        len: usize,
    },
    /// Closed or reset before one byte of an answer.
    Nothing,
    /// Closed, reset or unparsable after some bytes.
    Broken,
    Timeout,
}

/// How sending the request went.
enum Sent {
    Done,
    /// The backend connection failed (or closed) while the request went up.
    Upstream,
    /// The client went quiet for `timeouts.idle` mid-body.
    Timeout,
    /// The client's body broke its framing, grew past `max_request_body` or ended early.
    Client(Failed),
}

/// Forwards `fwd` (its body's first bytes, and then the rest, read from `input` and
/// `client`) and relays the answer; whether the client connection may carry another request.
pub(crate) async fn forward(fwd: Forward, client: &mut TcpStream, input: &mut Buf) -> bool {
    let Forward {
        mut route,
        keep_alive,
        head_method,
        body,
        retryable,
        max_body,
        mut upstream_head,
        mut log,
        start,
        ..
    } = fwd;
    let set_cookie = route.set_cookie.take();
    let mut request = framing(body);
    let mut sent = 0u64;
    // The body's first bytes go up in the same write as the head.
    let Some(first) = take_body(&mut request, input, &mut upstream_head, &mut sent, max_body) else {
        return fail(&route, Failed::BadBody, log, start, false, client).await;
    };
    let mut body_done = first;
    let mut other_tried = false;
    let mut fresh = false;
    loop {
        let pool = route.pool();
        let backend = route.backend().clone();
        let timeouts = &route.service.timeouts;
        let to =
            Target { conns: &pool.conns[route.backend], addr: backend.address(), timeouts, metrics: &pool.metrics };
        let (mut raw, reused) = match upstream::obtain(&to, fresh).await {
            Ok(got) => got,
            Err(Obtain::Refused(e)) => {
                tracing::debug!(error = %e, backend = backend.address(), "upstream connect failed");
                backend.connect_failed();
                pool.metrics.upstream_error("connect");
                if !other_tried && let Some(next) = pool.pick(Some(route.backend)) {
                    other_tried = true;
                    pool.metrics.retry_connect();
                    route = Route { service: route.service.clone(), pool: route.pool, backend: next, set_cookie: None };
                    continue;
                }
                return fail(&route, Failed::Unreachable, log, start, keep_alive && body_done, client).await;
            }
            Err(Obtain::Busy) => return fail(&route, Failed::Busy, log, start, keep_alive && body_done, client).await,
            Err(Obtain::Handshake(_)) => {
                return fail(&route, Failed::Upstream, log, start, keep_alive && body_done, client).await;
            }
        };
        let mut tracker = Tracker::begin(route.service.clone(), route.pool, route.backend, start);
        let sending = if raw.stream.write_all(&upstream_head.data).await.is_err() {
            Sent::Upstream
        } else if body_done {
            Sent::Done
        } else {
            let s = send_body(&mut raw, &mut request, input, client, &mut sent, max_body, timeouts.idle).await;
            body_done = matches!(s, Sent::Done);
            s
        };
        let mut up = Buf::take();
        let close = !keep_alive;
        // A 1xx passed on is an answer begun: no retry after it (and the head is gone).
        let mut interim = false;
        let heard = match sending {
            Sent::Done => loop {
                let at = head_deadline(None, Instant::now(), timeouts);
                let cookie = set_cookie.as_deref().map(str::as_bytes);
                match read_head(&mut raw, &mut up, at, head_method, close, cookie, &mut upstream_head).await {
                    Heard::Interim { len } => {
                        interim = true;
                        up.consume(len);
                        if client.write_all(&upstream_head.data).await.is_err() {
                            return false;
                        }
                    }
                    heard => break heard,
                }
            },
            // Sent in full or not at all: a reused connection that closed takes the retry path.
            Sent::Upstream if body_done => Heard::Nothing,
            Sent::Upstream => Heard::Broken,
            Sent::Timeout => Heard::Timeout,
            Sent::Client(f) => {
                drop(tracker);
                return fail(&route, f, log, start, false, client).await;
            }
        };
        let (status, len, body, up_keep) = match heard {
            Heard::Head { status, len, body, keep_alive } => (status, len, body, keep_alive),
            Heard::Nothing if reused && !fresh && retryable && !interim => {
                tracing::debug!(
                    backend = backend.address(),
                    "reused connection closed unanswered; retrying on a fresh one"
                );
                pool.metrics.retry_reused_closed();
                fresh = true;
                continue;
            }
            Heard::Nothing | Heard::Broken | Heard::Interim { .. } => {
                pool.metrics.upstream_error("reset");
                drop(tracker);
                return fail(&route, Failed::Upstream, log, start, keep_alive && body_done, client).await;
            }
            Heard::Timeout => {
                pool.metrics.upstream_error("timeout");
                drop(tracker);
                return fail(&route, Failed::Timeout, log, start, keep_alive && body_done, client).await;
            }
        };
        backend.connect_ok();
        tracker.set_status(status);
        if let Some(l) = &mut log {
            l.routed(&route.service, route.pool, Some(route.backend));
        }
        tracker.set_log(log);
        up.consume(len);
        // The rebuilt head is in `upstream_head`; the first body bytes go out with it.
        let out = &mut upstream_head;
        let relayed = relay(body, &mut raw, &mut up, out, client, &mut tracker, timeouts.idle).await;
        let clean = relayed.is_some_and(|extra| !extra);
        if clean && up_keep {
            tracker.conns().put_raw(raw);
        }
        return relayed.is_some() && keep_alive && body != Body::UntilClose;
    }
}

fn framing(body: Body) -> Framing {
    match body {
        Body::None => Framing::Length(0),
        Body::Length(n) => Framing::Length(n),
        Body::Chunked => Framing::Chunked(Chunked::default()),
        Body::UntilClose => Framing::UntilClose,
    }
}

/// Moves the body bytes at the front of `input` to `out`, counting its data in
/// `sent`; whether the body is complete, `None` if it broke its framing or the limit.
fn take_body(framing: &mut Framing, input: &mut Buf, out: &mut Buf, sent: &mut u64, limit: u64) -> Option<bool> {
    let (n, data, done) = framing.take(input.unread())?;
    *sent += data;
    if limit > 0 && *sent > limit {
        return None;
    }
    out.data.extend_from_slice(input.slice(0..n));
    input.consume(n);
    Some(done)
}

/// Streams the rest of the request body from the client to the backend.
async fn send_body(
    raw: &mut Raw,
    framing: &mut Framing,
    input: &mut Buf,
    client: &mut TcpStream,
    sent: &mut u64,
    limit: u64,
    idle: std::time::Duration,
) -> Sent {
    let mut out = Buf::take();
    loop {
        input.compact();
        match read(client, input, after(Instant::now(), idle)).await {
            Ok(0) | Err(Stop::Io) => return Sent::Client(Failed::ClientGone),
            Err(Stop::Timeout) => return Sent::Timeout,
            Ok(_) => {}
        }
        out.clear();
        let before = *sent;
        let Some(done) = take_body(framing, input, &mut out, sent, limit) else {
            let too_large = limit > 0 && *sent > limit && before <= limit;
            return Sent::Client(if too_large { Failed::TooLarge(limit) } else { Failed::BadBody });
        };
        if raw.stream.write_all(&out.data).await.is_err() {
            return Sent::Upstream;
        }
        if done {
            return Sent::Done;
        }
    }
}

/// Reads the response head into `up`, rebuilding it for the client into `out`.
async fn read_head(
    raw: &mut Raw,
    up: &mut Buf,
    at: Instant,
    head_method: bool,
    close: bool,
    set_cookie: Option<&[u8]>,
    out: &mut Buf,
) -> Heard {
    loop {
        if !up.unread().is_empty() {
            let mut lines = [EMPTY_HEADER; MAX_HEADERS];
            match parse::response(up.unread(), &mut lines, MAX_RESPONSE_HEAD, head_method) {
                Ok(None) => {}
                // Nothing was asked to switch protocols.
                Ok(Some(h)) if h.status == 101 => return Heard::Broken,
                Ok(Some(h)) if h.status < 200 => {
                    out.clear();
                    write::response_head(&mut out.data, &h, false, None);
                    return Heard::Interim { len: h.len };
                }
                Ok(Some(h)) => {
                    out.clear();
                    write::response_head(&mut out.data, &h, close, set_cookie);
                    return Heard::Head { status: h.status, len: h.len, body: h.body, keep_alive: h.keep_alive };
                }
                Err(e) => {
                    tracing::debug!(refusal = e.reason(), "unreadable response head");
                    return Heard::Broken;
                }
            }
        }
        match read(&mut raw.stream, up, at).await {
            Ok(0) | Err(Stop::Io) if up.unread().is_empty() => return Heard::Nothing,
            Ok(0) | Err(Stop::Io) => return Heard::Broken,
            Err(Stop::Timeout) => return Heard::Timeout,
            Ok(_) => {}
        }
    }
}

pub(crate) enum Stop {
    Io,
    Timeout,
}

/// One read into `buf` (made room for first), by `at`.
pub(crate) async fn read(stream: &mut TcpStream, buf: &mut Buf, at: Instant) -> Result<usize, Stop> {
    if buf.data.len() == buf.data.capacity() {
        buf.compact();
        if buf.data.len() == buf.data.capacity() {
            buf.data.reserve(SIZE);
        }
    }
    loop {
        match stream.try_read_buf(&mut buf.data) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return Err(Stop::Io),
        }
        match tokio::time::timeout_at(at, stream.readable()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Stop::Io),
            Err(_) => return Err(Stop::Timeout),
        }
    }
}

/// Where a body's end is, as its framing says.
enum Framing {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

impl Framing {
    /// How much of `input` is body, how many of those are data (not chunk framing),
    /// and whether the body ends there.
    fn take(&mut self, input: &[u8]) -> Option<(usize, u64, bool)> {
        match self {
            Framing::Length(left) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(input.len());
                *left -= n as u64;
                Some((n, n as u64, *left == 0))
            }
            Framing::Chunked(c) => c.feed(input).ok().map(|f| (f.used, f.data, f.done)),
            Framing::UntilClose => Some((input.len(), input.len() as u64, false)),
        }
    }
}

/// Sends `out` (the head) with the body's first bytes, then the rest of the body.
/// `None` if the exchange broke (the client connection must close); else whether the
/// backend sent more than the body (its connection must not be reused).
async fn relay(
    body: Body,
    raw: &mut Raw,
    up: &mut Buf,
    out: &mut Buf,
    client: &mut TcpStream,
    tracker: &mut Tracker,
    idle: std::time::Duration,
) -> Option<bool> {
    let mut framing = framing(body);
    let head = out.data.len();
    let (n, _, mut done) = framing.take(up.unread())?;
    out.data.extend_from_slice(up.slice(0..n));
    up.consume(n);
    tracker.add_bytes(out.data.len() - head);
    client.write_all(&out.data).await.ok()?;
    while !done {
        up.clear();
        match read(&mut raw.stream, up, after(Instant::now(), idle)).await {
            Ok(0) if matches!(framing, Framing::UntilClose) => return Some(true),
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let (n, _, end) = framing.take(up.unread())?;
        client.write_all(up.slice(0..n)).await.ok()?;
        tracker.add_bytes(n);
        up.consume(n);
        done = end;
    }
    Some(!up.unread().is_empty())
}

/// Failures answered by the proxy itself.
enum Failed {
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

/// Answers a failed exchange (502/503/504), counted on the pool and logged.
async fn fail(
    route: &Route,
    f: Failed,
    mut log: Option<Box<crate::access_log::Pending>>,
    start: std::time::Instant,
    keep_alive: bool,
    client: &mut TcpStream,
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
    client.write_all(&out.data).await.is_ok() && keep_alive
}
