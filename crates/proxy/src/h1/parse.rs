//! Request and response heads read strictly (SPEC §7), on `httparse` into a
//! caller's stack array: nothing is allocated, the head stays where it was read.
//!
//! `httparse` refuses a malformed request or status line, a malformed header line,
//! a bare CR, obs-fold and control bytes in values. On top of it this module
//! decides the message's framing the way nginx does, so that no backend can read
//! a message's end differently from the proxy: `Content-Length` with
//! `Transfer-Encoding`, differing or non-numeric lengths and codings other than
//! `chunked` alone are refused; `RequestHead::host_rule` adds SPEC's rule on `Host`.

use httparse::{Header, Status};

/// Header lines a head may have; more is answered 431 like a head over the size limit.
pub const MAX_HEADERS: usize = 128;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body (no length, a `HEAD` answer, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// A response with neither: it ends when the backend closes.
    UntilClose,
}

/// Why a head is refused. A request's refusal is answered with `status()` and the
/// connection closed; a response's is a 502.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Bad request or status line, bad header line, bare CR, obs-fold, bad version.
    Malformed,
    /// The head is over the size limit or has more than `MAX_HEADERS` lines.
    TooLarge,
    /// `Content-Length` with `Transfer-Encoding`, or repeated, listed, not a number,
    /// or overflowing.
    AmbiguousLength,
    /// An HTTP/1.1 request without `Host`.
    MissingHost,
    /// More than one `Host`.
    RepeatedHost,
    /// A transfer coding other than `chunked` alone.
    UnsupportedEncoding,
}

impl Refusal {
    /// The status a request refused for this is answered with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::TooLarge => 431,
            Refusal::UnsupportedEncoding => 501,
            _ => 400,
        }
    }

    /// A short reason for the answer's body and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "400 malformed request head",
            Refusal::TooLarge => "431 request head larger than max_header_bytes",
            Refusal::AmbiguousLength => "400 ambiguous message length (Content-Length / Transfer-Encoding)",
            Refusal::MissingHost => "400 an HTTP/1.1 request needs a Host header",
            Refusal::RepeatedHost => "400 more than one Host header",
            Refusal::UnsupportedEncoding => "501 only \"Transfer-Encoding: chunked\" is supported",
        }
    }
}

/// What the headers say about the connection and the body.
#[derive(Debug, Clone, Copy, Default)]
struct Scan<'b> {
    host: Option<&'b [u8]>,
    hosts: u8,
    length: Option<u64>,
    bad_length: bool,
    /// `Transfer-Encoding` seen, and how many codings it lists / whether all are `chunked`.
    te_codings: u32,
    te_only_chunked: bool,
    close: bool,
    keep_alive: bool,
    upgrade_token: bool,
    upgrade_header: bool,
    expect_continue: bool,
}

/// A parsed request head; its slices point into the read buffer.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    pub method: &'b str,
    pub target: &'b str,
    /// HTTP/1.0 (else HTTP/1.1).
    pub http10: bool,
    pub headers: &'h [Header<'b>],
    /// Bytes of the head, up to and including its empty line.
    pub len: usize,
    pub body: Body,
    /// The `Host` header's value.
    pub host: Option<&'b [u8]>,
    /// How many `Host` lines there are.
    pub hosts: u8,
    /// The client wants the connection kept open after this exchange.
    pub keep_alive: bool,
    /// `Connection: upgrade` with an `Upgrade` header.
    pub upgrade: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

impl RequestHead<'_, '_> {
    /// SPEC §7's rule on `Host`, on top of the framing `request` decided: exactly one
    /// in HTTP/1.1, at most one in HTTP/1.0.
    pub fn host_rule(&self) -> Result<(), Refusal> {
        match self.hosts {
            0 if !self.http10 => Err(Refusal::MissingHost),
            0 | 1 => Ok(()),
            _ => Err(Refusal::RepeatedHost),
        }
    }
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    pub status: u16,
    pub reason: &'b str,
    pub http10: bool,
    pub headers: &'h [Header<'b>],
    pub len: usize,
    pub body: Body,
    /// The backend keeps the connection open after this answer.
    pub keep_alive: bool,
}

/// Reads a request head from the start of `buf`: `Ok(None)` while it is incomplete
/// (and under `max_bytes`).
pub fn request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    max_bytes: usize,
) -> Result<Option<RequestHead<'h, 'b>>, Refusal> {
    let mut req = httparse::Request::new(headers);
    let Some(len) = complete(req.parse(buf), buf.len(), max_bytes)? else { return Ok(None) };
    let httparse::Request { method, path, version, headers } = req;
    let (Some(method), Some(target), Some(minor)) = (method, path, version) else {
        return Err(Refusal::Malformed);
    };
    // The HTTP/2 preface is not an HTTP/1 request (RFC 9113 §3.4).
    if method == "PRI" || !target_form(method, target) {
        return Err(Refusal::Malformed);
    }
    let http10 = minor == 0;
    let s = scan(headers)?;
    let body = match (s.te_codings > 0, s.length) {
        // HTTP/1.0 has no transfer codings; nginx and hyper refuse them too.
        (true, _) if http10 => return Err(Refusal::AmbiguousLength),
        (true, Some(_)) => return Err(Refusal::AmbiguousLength),
        (true, None) if s.te_codings == 1 && s.te_only_chunked => Body::Chunked,
        (true, None) => return Err(Refusal::UnsupportedEncoding),
        (false, None) => Body::None,
        // `Content-Length: 0` is kept as such: some backends want it on a POST.
        (false, Some(n)) => Body::Length(n),
    };
    Ok(Some(RequestHead {
        method,
        target,
        http10,
        headers,
        len,
        body,
        host: s.host,
        hosts: s.hosts,
        keep_alive: if http10 { s.keep_alive && !s.close } else { !s.close },
        upgrade: s.upgrade_token && s.upgrade_header,
        expect_continue: s.expect_continue,
    }))
}

/// Reads a response head; `head_request` says the request was `HEAD`, whose answer
/// has no body whatever its headers say.
pub fn response<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    max_bytes: usize,
    head_request: bool,
) -> Result<Option<ResponseHead<'h, 'b>>, Refusal> {
    let mut resp = httparse::Response::new(headers);
    let Some(len) = complete(resp.parse(buf), buf.len(), max_bytes)? else { return Ok(None) };
    let httparse::Response { version, code, reason, headers } = resp;
    let (Some(minor), Some(status)) = (version, code) else { return Err(Refusal::Malformed) };
    let http10 = minor == 0;
    let s = scan(headers)?;
    let bodiless = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let body = match (s.te_codings > 0, s.length) {
        _ if bodiless => Body::None,
        (true, Some(_)) => return Err(Refusal::AmbiguousLength),
        (true, None) if s.te_codings == 1 && s.te_only_chunked => Body::Chunked,
        (true, None) => return Err(Refusal::UnsupportedEncoding),
        // `Length(0)`, not `None`: the client gets a length even if `Connection` named it.
        (false, Some(n)) => Body::Length(n),
        (false, None) => Body::UntilClose,
    };
    let keep_alive = if http10 { s.keep_alive && !s.close } else { !s.close };
    Ok(Some(ResponseHead {
        status,
        reason: reason.unwrap_or(""),
        http10,
        headers,
        len,
        body,
        keep_alive: keep_alive && body != Body::UntilClose,
    }))
}

/// The head's length once `httparse` found it complete (`None` while it is not,
/// and the buffer is under `max_bytes`).
fn complete(parsed: httparse::Result<usize>, buffered: usize, max_bytes: usize) -> Result<Option<usize>, Refusal> {
    match parsed {
        Ok(Status::Complete(n)) if n > max_bytes => Err(Refusal::TooLarge),
        Ok(Status::Complete(n)) => Ok(Some(n)),
        Ok(Status::Partial) if buffered > max_bytes => Err(Refusal::TooLarge),
        Ok(Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Refusal::TooLarge),
        Err(_) => Err(Refusal::Malformed),
    }
}

/// One pass over the header lines: host, length, codings, connection options.
fn scan<'b>(headers: &[Header<'b>]) -> Result<Scan<'b>, Refusal> {
    let mut s = Scan { te_only_chunked: true, ..Scan::default() };
    for h in headers {
        let name = h.name.as_bytes();
        // Dispatch on length first: most names are none of these and cost one compare.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                s.hosts = s.hosts.saturating_add(1);
                s.host = Some(h.value);
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                s.expect_continue |= h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => s.upgrade_header = true,
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for t in tokens(h.value) {
                    s.close |= t.eq_ignore_ascii_case(b"close");
                    s.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                    s.upgrade_token |= t.eq_ignore_ascii_case(b"upgrade");
                }
            }
            // One line with one number, as nginx and hyper want: a repeated or listed
            // length is refused even when the values agree.
            14 if name.eq_ignore_ascii_case(b"content-length") => match (length(h.value.trim_ascii()), s.length) {
                (Some(n), None) => s.length = Some(n),
                _ => s.bad_length = true,
            },
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // An empty value still says "some coding": never a length-delimited body.
                let mut any = false;
                for t in tokens(h.value) {
                    any = true;
                    s.te_codings = s.te_codings.saturating_add(1);
                    s.te_only_chunked &= t.eq_ignore_ascii_case(b"chunked");
                }
                if !any {
                    s.te_codings = s.te_codings.saturating_add(1);
                    s.te_only_chunked = false;
                }
            }
            _ => {}
        }
    }
    if s.bad_length { Err(Refusal::AmbiguousLength) } else { Ok(s) }
}

/// One of RFC 9112 §3.2's request-target forms: origin (`/path`), absolute
/// (`scheme://authority/…`), authority (CONNECT's `host:port`) or asterisk. The rare
/// forms other than origin are checked by `http::Uri`, as hyper checks them.
fn target_form(method: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return origin_form(target.as_bytes());
    }
    if target == "*" {
        return true;
    }
    // A fragment has no place in a request (and the authority would end at it).
    if target.contains('#') {
        return false;
    }
    http::Uri::try_from(target).is_ok_and(|u| {
        if method == "CONNECT" { u.authority().is_some() } else { u.scheme().is_some() && u.authority().is_some() }
    })
}

/// An origin-form target with only the characters `http::Uri` takes in a path
/// and a query (what httparse lets through besides: `<`, `>`, and `` ` `` in the
/// path or `"` in the query), and no fragment, which has no place in a request.
fn origin_form(target: &[u8]) -> bool {
    let mut query = false;
    for &b in target {
        match b {
            b'#' | b'<' | b'>' => return false,
            b'?' => query = true,
            b'`' if !query => return false,
            b'"' if query => return false,
            _ => {}
        }
    }
    true
}

/// The non-empty, trimmed elements of a comma-separated header value.
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty())
}

/// A `Content-Length` value: 1–19 decimal digits, nothing else.
fn length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
