//! Heads rebuilt from the parsed slices into a (pooled) buffer: the request line
//! and header lines copied as they came, minus the hop-by-hop ones and those that
//! `Connection` names, with CRLF line ends, a canonical length, and the proxy's own
//! lines (`Host`, `X-Forwarded-*`, `Set-Cookie`, `Connection: close`) added. The
//! same header policy as `headers.rs` applies to hyper's `HeaderMap`s.

use super::parse::{Body, RequestHead, ResponseHead, tokens};
use httparse::Header;

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the common non-standard ones), and
/// `Upgrade`, which only an upgrade puts back deliberately.
const HOP_BY_HOP: [&[u8]; 9] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
];

/// What the proxy adds to a forwarded request, and what it takes out.
pub struct Forwarding<'a> {
    /// The client's address, as text.
    pub client: &'a [u8],
    /// `http` or `https`.
    pub proto: &'a str,
    /// The host the request was routed by: the backend's `Host` and `X-Forwarded-Host`.
    pub host: &'a [u8],
    /// Request headers that are the proxy's own routing inputs (the preview header,
    /// the service's override header); never forwarded.
    pub own: [Option<&'a [u8]>; 2],
    /// A cookie that is the proxy's own (the preview cookie); its pair is removed.
    pub own_cookie: &'a [u8],
    /// A WebSocket upgrade: `Upgrade: websocket` and `Connection: upgrade` go up
    /// (all other `Upgrade` and `Connection` lines are hop-by-hop).
    pub websocket: bool,
}

/// Whether `name` is hop-by-hop or named by one of the message's `Connection` lines.
fn hop(name: &[u8], headers: &[Header<'_>]) -> bool {
    if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        return true;
    }
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .any(|h| tokens(h.value).any(|t| t.eq_ignore_ascii_case(name)))
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
pub(crate) fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn framing(out: &mut Vec<u8>, body: Body) {
    match body {
        Body::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Body::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Body::None | Body::UntilClose => {}
    }
}

/// Writes the head of `req` as it goes to the backend (HTTP/1.1, keep-alive).
pub fn request_head(out: &mut Vec<u8>, req: &RequestHead<'_, '_>, fwd: &Forwarding<'_>) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    // (An absolute-form target's path may be empty or start with its query; an
    // asterisk goes as it is.)
    if !req.target.starts_with('/') && req.target != "*" {
        out.push(b'/');
    }
    out.extend_from_slice(req.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut forwarded_for = false;
    for h in req.headers {
        let name = h.name.as_bytes();
        let skip = match name.len() {
            4 => name.eq_ignore_ascii_case(b"host"),
            // The proxy answers `Expect: 100-continue` itself (as nginx does).
            6 if name.eq_ignore_ascii_case(b"expect") => req.expect_continue,
            6 if name.eq_ignore_ascii_case(b"cookie") => {
                cookie(out, h, fwd.own_cookie);
                true
            }
            14 => name.eq_ignore_ascii_case(b"content-length"),
            15 if name.eq_ignore_ascii_case(b"x-forwarded-for") => {
                // All of the client's lines, then its address, as one list.
                if !forwarded_for {
                    forwarded_for = true;
                    out.extend_from_slice(b"X-Forwarded-For: ");
                    for v in req.headers.iter().filter(|v| v.name.eq_ignore_ascii_case("x-forwarded-for")) {
                        out.extend_from_slice(v.value);
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(fwd.client);
                    out.extend_from_slice(b"\r\n");
                }
                true
            }
            16 | 17 => {
                name.eq_ignore_ascii_case(b"x-forwarded-host") || name.eq_ignore_ascii_case(b"x-forwarded-proto")
            }
            _ => false,
        };
        if skip || hop(name, req.headers) || fwd.own.iter().flatten().any(|o| name.eq_ignore_ascii_case(o)) {
            continue;
        }
        line(out, name, h.value);
    }
    line(out, b"Host", fwd.host);
    if !forwarded_for {
        line(out, b"X-Forwarded-For", fwd.client);
    }
    line(out, b"X-Forwarded-Proto", fwd.proto.as_bytes());
    line(out, b"X-Forwarded-Host", fwd.host);
    framing(out, req.body);
    if fwd.websocket {
        out.extend_from_slice(b"Upgrade: websocket\r\nConnection: upgrade\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A `Cookie` line without the pair named `own` (left out entirely if nothing else remains).
fn cookie(out: &mut Vec<u8>, h: &Header<'_>, own: &[u8]) {
    let is_own = |p: &[u8]| p.trim_ascii().strip_prefix(own).is_some_and(|r| r.trim_ascii_start().starts_with(b"="));
    if own.is_empty() || !h.value.split(|&b| b == b';').any(is_own) {
        line(out, h.name.as_bytes(), h.value);
        return;
    }
    let mark = out.len();
    out.extend_from_slice(b"Cookie: ");
    let start = out.len();
    for pair in h.value.split(|&b| b == b';').map(<[u8]>::trim_ascii).filter(|p| !p.is_empty() && !is_own(p)) {
        if out.len() > start {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(pair);
    }
    if out.len() == start {
        out.truncate(mark);
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes the head of `resp` as it goes to the client. `close` adds
/// `Connection: close` (the client asked, or the body ends at close);
/// `set_cookie` is the sticky cookie of a client that had none. For an HTTP/1.0
/// client (`http10`) a chunked body goes without its framing, to the close, and a
/// connection kept open says `Connection: keep-alive`.
pub fn response_head(
    out: &mut Vec<u8>,
    resp: &ResponseHead<'_, '_>,
    close: bool,
    set_cookie: Option<&[u8]>,
    http10: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    decimal(out, u64::from(resp.status));
    out.push(b' ');
    out.extend_from_slice(resp.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let switching = resp.status == 101;
    for h in resp.headers {
        let name = h.name.as_bytes();
        if switching && name.eq_ignore_ascii_case(b"upgrade") {
            line(out, name, h.value);
            continue;
        }
        // A bodiless answer's length is about another message (HEAD, 304): kept as
        // sent; a 1xx has none (RFC 9110 §8.6).
        let length = name.eq_ignore_ascii_case(b"content-length") && (resp.body != Body::None || resp.status < 200);
        if length || hop(name, resp.headers) {
            continue;
        }
        line(out, name, h.value);
    }
    if let Some(c) = set_cookie {
        line(out, b"Set-Cookie", c);
    }
    let dechunked = http10 && resp.body == Body::Chunked;
    if !dechunked {
        framing(out, resp.body);
    }
    if switching {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if close || resp.body == Body::UntilClose || dechunked {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
