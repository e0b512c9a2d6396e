//! One forwarded request on the HTTP/1 path: a backend connection (idle or new;
//! a refused connect is tried once on another backend, a reused connection that
//! closed unanswered once on a fresh one), the head written in one write, the
//! response head read and rebuilt for the client, and the body copied through
//! pooled buffers as its framing says. Counted, timed and logged like hyper's path.

use super::body::{Sent, Stop, framing, read, relay, send_body, take_body};
use super::buf::Buf;
use super::parse::{self, Body, MAX_HEADERS};
use super::prepare::{Forward, own_answer};
use super::upstream::{self, Raw};
use super::write;
use crate::error::ProxyError;
use crate::exchange::head_deadline;
use crate::forward::{Route, counted};
use crate::request_check::Reject;
use crate::tracker::Tracker;
use crate::upstream::{Obtain, Target};
use httparse::EMPTY_HEADER;
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
    let mut body_done = match take_body(&mut request, input, &mut upstream_head, &mut sent, max_body) {
        Ok(done) => done,
        Err(f) => return fail(&route, f, log, start, false, client).await,
    };
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
