//! Strict checks on a parsed request head (SPEC §7), for what hyper accepts but a
//! backend could read differently: a missing or repeated `Host`, a
//! `Transfer-Encoding` other than `chunked` alone, a declared body over
//! `max_request_body`. Each refusal is the proxy's own answer and closes the
//! connection (the rest of what the client sent cannot be trusted or is unread).
//!
//! hyper itself already refuses (400, close) a malformed request line or header
//! line, a bare CR, obs-fold, `Content-Length` with `Transfer-Encoding`, a repeated
//! or listed `Content-Length`, and a `Transfer-Encoding` whose last coding is not
//! `chunked` (RFC 9112 §6.3); those never reach this module.

use crate::access_log::Pending;
use crate::body::ResponseBody;
use http::header::{CONNECTION, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Response, StatusCode, Version};
use std::fmt;
use std::time::Instant;

/// Why a request is refused before it is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reject {
    /// An HTTP/1.1 request without `Host`.
    MissingHost,
    /// More than one `Host` header.
    RepeatedHost,
    /// A transfer coding other than `chunked` alone (`gzip, chunked`, `chunked, chunked`).
    UnsupportedTransferEncoding,
    /// The body is larger than `max_request_body`.
    BodyTooLarge {
        /// Service name.
        service: Box<str>,
        /// Pool name.
        pool: Box<str>,
        /// The limit in bytes.
        limit: u64,
    },
}

impl Reject {
    fn status(&self) -> StatusCode {
        match self {
            Reject::MissingHost | Reject::RepeatedHost => StatusCode::BAD_REQUEST,
            Reject::UnsupportedTransferEncoding => StatusCode::NOT_IMPLEMENTED,
            Reject::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The answer, with `Connection: close` for HTTP/1 clients (HTTP/2 has no such
    /// header; hyper ends only the stream there).
    pub(crate) fn into_response(self, version: Version) -> Response<ResponseBody> {
        let status = self.status();
        let mut resp = Response::new(ResponseBody::text(format!("{self}\n")));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        if version < Version::HTTP_2 {
            h.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }

    /// The answer, counted by `count` and logged.
    pub(crate) fn answer(
        self,
        version: Version,
        count: impl FnOnce(u16),
        log: Option<Box<Pending>>,
        start: Instant,
    ) -> Response<ResponseBody> {
        let resp = self.into_response(version);
        let status = resp.status().as_u16();
        count(status);
        if let Some(l) = log {
            let bytes = http_body::Body::size_hint(resp.body()).exact().unwrap_or(0);
            l.finish(status, bytes, start.elapsed());
        }
        resp
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::MissingHost => write!(f, "400 an HTTP/1.1 request needs a Host header"),
            Reject::RepeatedHost => write!(f, "400 more than one Host header"),
            Reject::UnsupportedTransferEncoding => {
                write!(f, "501 only \"Transfer-Encoding: chunked\" is supported")
            }
            Reject::BodyTooLarge { service, pool, limit } => write!(
                f,
                "413 service \"{service}\" pool \"{pool}\": request body larger than {limit} bytes (max_request_body)"
            ),
        }
    }
}

/// The head checks every request goes through before routing: two hashed lookups,
/// no allocation.
pub(crate) fn check_head(version: Version, headers: &HeaderMap) -> Result<(), Reject> {
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return Err(Reject::RepeatedHost),
        (None, None) if version == Version::HTTP_11 => return Err(Reject::MissingHost),
        _ => {}
    }
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    match (codings.next(), codings.next()) {
        (None, _) => Ok(()),
        (Some(v), None) if v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(Reject::UnsupportedTransferEncoding),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn host_rules() {
        assert_eq!(check_head(Version::HTTP_11, &headers(&[])), Err(Reject::MissingHost));
        assert_eq!(check_head(Version::HTTP_10, &headers(&[])), Ok(()));
        assert_eq!(check_head(Version::HTTP_2, &headers(&[])), Ok(()));
        let two = headers(&[("host", "a"), ("host", "b")]);
        assert_eq!(check_head(Version::HTTP_11, &two), Err(Reject::RepeatedHost));
        assert_eq!(check_head(Version::HTTP_10, &two), Err(Reject::RepeatedHost));
        assert_eq!(check_head(Version::HTTP_11, &headers(&[("host", "a")])), Ok(()));
    }

    #[test]
    fn only_chunked_alone_is_accepted() {
        let ok = |te: &'static str| check_head(Version::HTTP_11, &headers(&[("host", "a"), ("transfer-encoding", te)]));
        assert_eq!(ok("chunked"), Ok(()));
        assert_eq!(ok("Chunked"), Ok(()));
        assert_eq!(ok("gzip, chunked"), Err(Reject::UnsupportedTransferEncoding));
        assert_eq!(ok("chunked, chunked"), Err(Reject::UnsupportedTransferEncoding));
        let twice = headers(&[("host", "a"), ("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")]);
        assert_eq!(check_head(Version::HTTP_11, &twice), Err(Reject::UnsupportedTransferEncoding));
    }

    #[test]
    fn answers_close_http1_connections() {
        let r = Reject::UnsupportedTransferEncoding.into_response(Version::HTTP_11);
        assert_eq!(r.status(), 501);
        assert_eq!(r.headers()[CONNECTION], "close");
        let r = Reject::MissingHost.into_response(Version::HTTP_2);
        assert_eq!(r.status(), 400);
        assert!(!r.headers().contains_key(CONNECTION));
    }
}
