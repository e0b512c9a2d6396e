//! What to do with a request head read by the HTTP/1 path, decided synchronously
//! while its parsed slices (and the header array they sit in) are on the stack:
//! refuse it, answer it ourselves, hand the connection to hyper, or forward it —
//! with the routing decision made and the upstream head already written.

use super::buf::Buf;
use super::parse::{self, Body, MAX_HEADERS, Refusal, RequestHead};
use super::write::{self, Forwarding};
use crate::access_log::Pending;
use crate::error::ProxyError;
use crate::forward::{PREVIEW_HEADER, Proxy, Refusal as NoRoute, Route, counted, decide, no_service};
use crate::headers::authority_host;
use crate::preview;
use crate::request_check::Reject;
use crate::service_route::PoolRoute;
use httparse::EMPTY_HEADER;
use std::time::Instant;

/// The verdict on the bytes at the front of a connection's buffer.
pub(crate) enum Prepared {
    /// The head is not complete yet.
    Partial,
    /// To a service with an h2c pool, which hyper's path carries: the connection
    /// goes to hyper as it is.
    Fallback,
    /// Broken or hostile: answered with the refusal's status, then closed.
    Refuse(Refusal),
    /// The proxy's own answer (404, 503, 405), counted and logged already.
    Answer { response: Buf, head_len: usize, close: bool },
    /// To a backend.
    Forward(Forward),
}

/// A request on its way to a backend.
pub(crate) struct Forward {
    pub(crate) route: Route,
    /// Bytes of the client's head in its buffer.
    pub(crate) head_len: usize,
    pub(crate) keep_alive: bool,
    /// A `HEAD` request: its answer has no body.
    pub(crate) head_method: bool,
    /// The request body's framing.
    pub(crate) body: Body,
    /// May be sent again on a fresh connection if a reused one closed unanswered:
    /// idempotent and body-less (SPEC §3).
    pub(crate) retryable: bool,
    /// `max_request_body`; 0 = unlimited.
    pub(crate) max_body: u64,
    /// `Expect: 100-continue` with a body: the client waits for a `100 Continue`.
    pub(crate) expects_continue: bool,
    /// A WebSocket upgrade: a `101` from the backend turns the connection into a tunnel.
    pub(crate) upgrade: bool,
    /// An HTTP/1.0 client: its answer comes without interim answers or chunking.
    pub(crate) http10: bool,
    /// The head as it goes upstream.
    pub(crate) upstream_head: Buf,
    pub(crate) log: Option<Box<Pending>>,
    pub(crate) start: Instant,
}

/// An absolute-form target (`scheme://authority/path?query`, checked by the parser)
/// split into the host it names (the authority without `userinfo@`) and what goes
/// upstream as the origin-form target (a path, maybe empty or only a query: the
/// head writer puts the `/` in front).
fn absolute(target: &str) -> Option<(&str, &str)> {
    let (_, rest) = target.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    Some((authority_host(authority), path))
}

/// A body-less request asking to switch to WebSocket (`Connection: upgrade` and
/// `websocket` among the `Upgrade` tokens). Only WebSocket is tunnelled: any other
/// `Upgrade` (`h2c`, ...) is dropped with the hop-by-hop lines and the request
/// forwarded as a plain one, as on hyper's path.
fn websocket(head: &RequestHead<'_, '_>) -> bool {
    head.upgrade
        && !head.http10
        && matches!(head.body, Body::None | Body::Length(0))
        && head
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("upgrade"))
            .any(|h| parse::tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"websocket")))
}

/// Methods a request may be repeated with (RFC 9110 §9.2.2).
fn idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE")
}

/// Reads the head at the front of `buf` and decides (see `Prepared`).
pub(crate) fn prepare(buf: &Buf, proxy: &Proxy, max_head: usize) -> Prepared {
    let mut lines = [EMPTY_HEADER; MAX_HEADERS];
    let mut head = match parse::request(buf.unread(), &mut lines, max_head) {
        Ok(Some(head)) => head,
        Ok(None) => return Prepared::Partial,
        Err(r) => return Prepared::Refuse(r),
    };
    let start = Instant::now();
    let (log, client_ip, client_header, proto) = proxy.client();
    if let Err(r) = head.host_rule() {
        let log = log.begin_raw(head.method, head.host, head.target, client_ip);
        let counters = proxy.router().load().unrouted.clone();
        let text = format!("{}\n", r.reason());
        return own(r.status(), &text, |s| counters.count(s), log, start, head.len, true);
    }
    if head.method == "CONNECT" {
        let log = log.begin_raw(head.method, head.host, head.target, client_ip);
        let counters = proxy.router().load().unrouted.clone();
        return answer(ProxyError::MethodNotAllowed, |s| counters.count(s), log, start, &head);
    }
    // The host that routes the request is the one the backend sees: an absolute-form
    // target's replaces `Host` (RFC 9112 §3.2.2), and its path goes up alone. An
    // asterisk (`OPTIONS *`) goes up as it came.
    let mut host = head.host.unwrap_or_default();
    let mut log_host = head.host;
    if !head.target.starts_with('/') && head.target != "*" {
        let Some((authority, path)) = absolute(head.target) else { return Prepared::Fallback };
        host = authority.as_bytes();
        log_host = Some(host);
        head.target = if path.is_empty() { "/" } else { path };
    }
    let mut log = log.begin_raw(head.method, log_host, head.target, client_ip);
    let table = proxy.router().load();
    let decided = match table.route(host) {
        // hyper's path carries h2c pools: it makes the whole decision, once.
        Some(service) if service.pools.iter().any(PoolRoute::is_h2c) => return Prepared::Fallback,
        Some(service) => decide(service, head.headers, table.preview_key()),
        None => Err(no_service(host, &table)),
    };
    drop(table);
    let route = match decided {
        Ok(route) => route,
        Err(NoRoute::NoService { host, counters }) => {
            return answer(ProxyError::NoService { host }, |s| counters.count(s), log, start, &head);
        }
        Err(NoRoute::NoHealthy { service, pool }) => {
            if let Some(l) = &mut log {
                l.routed(&service, pool, None);
            }
            let p = &service.pools[pool];
            let e = ProxyError::NoHealthyBackend { service: service.name.clone(), pool: p.name.clone() };
            return answer(e, |s| counted(p, s, start), log, start, &head);
        }
    };
    let max_body = proxy.max_body();
    if let Body::Length(n) = head.body
        && max_body > 0
        && n > max_body
    {
        if let Some(l) = &mut log {
            l.routed(&route.service, route.pool, None);
        }
        let p = route.pool();
        let reject =
            Reject::BodyTooLarge { service: route.service.name.clone(), pool: p.name.clone(), limit: max_body };
        let text = format!("{reject}\n");
        return own(413, &text, |s| counted(p, s, start), log, start, head.len, true);
    }
    let upgrade = websocket(&head);
    let mut upstream_head = Buf::take();
    let own = route.service.override_header.as_ref().map(|h| h.as_str().as_bytes());
    let fwd = Forwarding {
        client: client_header.as_bytes(),
        proto,
        host,
        own: [Some(PREVIEW_HEADER.as_str().as_bytes()), own],
        own_cookie: preview::COOKIE.as_bytes(),
        websocket: upgrade,
    };
    write::request_head(&mut upstream_head.data, &head, &fwd);
    Prepared::Forward(Forward {
        route,
        head_len: head.len,
        keep_alive: head.keep_alive,
        head_method: head.method == "HEAD",
        body: head.body,
        retryable: idempotent(head.method) && matches!(head.body, Body::None | Body::Length(0)),
        max_body,
        // (An HTTP/1.0 client is sent no interim answer.)
        expects_continue: head.expect_continue && !head.http10 && !matches!(head.body, Body::None | Body::Length(0)),
        upgrade,
        http10: head.http10,
        upstream_head,
        log,
        start,
    })
}

/// The proxy's own answer to `head`, counted by `count` and logged.
fn answer(
    e: ProxyError,
    count: impl FnOnce(u16),
    log: Option<Box<Pending>>,
    start: Instant,
    head: &RequestHead<'_, '_>,
) -> Prepared {
    // Unread body bytes cannot be told from the next request: such a connection
    // closes, and so does an HTTP/1.0 one (the proxy's answers never say keep-alive).
    let close = !head.keep_alive || head.http10 || !matches!(head.body, Body::None | Body::Length(0));
    // An answer to `HEAD` has no body (its length is 0: there is none to describe).
    let text = if head.method == "HEAD" { String::new() } else { format!("{e}\n") };
    own(e.status().as_u16(), &text, count, log, start, head.len, close)
}

fn own(
    status: u16,
    text: &str,
    count: impl FnOnce(u16),
    log: Option<Box<Pending>>,
    start: Instant,
    head_len: usize,
    close: bool,
) -> Prepared {
    let mut response = Buf::take();
    own_answer(&mut response.data, status, text, close);
    count(status);
    if let Some(l) = log {
        l.finish(status, text.len() as u64, start.elapsed());
    }
    Prepared::Answer { response, head_len, close }
}

/// A complete plain-text answer of the proxy's own.
pub(crate) fn own_answer(out: &mut Vec<u8>, status: u16, text: &str, close: bool) {
    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    out.extend_from_slice(b"HTTP/1.1 ");
    write::decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    write::decimal(out, text.len() as u64);
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(text.as_bytes());
}
