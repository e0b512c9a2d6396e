//! Failures of a proxied request: each knows its status, who failed, and its text.

use crate::body::ResponseBody;
use http::{HeaderValue, Response, StatusCode, header};
use std::fmt;

/// Why the proxy answered a request itself.
#[derive(Debug)]
pub enum ProxyError {
    /// No service matches the request's host.
    NoService {
        /// The host asked for.
        host: String,
    },
    /// The chosen pool has no healthy backend.
    NoHealthyBackend {
        /// Service name.
        service: Box<str>,
        /// Pool name.
        pool: Box<str>,
    },
    /// No backend of the pool could be reached (connect failed, twice when possible).
    Unreachable {
        /// Service name.
        service: Box<str>,
        /// Pool name.
        pool: Box<str>,
        /// The last backend tried.
        backend: Box<str>,
    },
    /// The backend broke the exchange after the request was sent.
    Upstream {
        /// Service name.
        service: Box<str>,
        /// Pool name.
        pool: Box<str>,
        /// The backend.
        backend: Box<str>,
    },
    /// The response headers did not arrive in time.
    Timeout {
        /// Service name.
        service: Box<str>,
        /// Pool name.
        pool: Box<str>,
        /// The backend.
        backend: Box<str>,
    },
    /// The backend is at `max_upstream_connections` and none came free within `timeouts.connect`.
    Busy {
        /// Service name.
        service: Box<str>,
        /// Pool name.
        pool: Box<str>,
        /// The backend.
        backend: Box<str>,
    },
    /// A method a reverse proxy does not forward.
    MethodNotAllowed,
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoService { .. } => StatusCode::NOT_FOUND,
            ProxyError::NoHealthyBackend { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Unreachable { .. } | ProxyError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The upstream error kind for metrics and logs (`None` when no backend was involved).
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            ProxyError::Unreachable { .. } => Some("connect"),
            ProxyError::Upstream { .. } => Some("reset"),
            ProxyError::Timeout { .. } => Some("timeout"),
            _ => None,
        }
    }

    /// A short plain-text response naming service and pool.
    pub fn into_response(self) -> Response<ResponseBody> {
        let status = self.status();
        let mut resp = Response::new(ResponseBody::text(format!("{self}\n")));
        *resp.status_mut() = status;
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        resp
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NoService { host } => write!(f, "404 no service for host \"{host}\""),
            ProxyError::NoHealthyBackend { service, pool } => {
                write!(f, "503 service \"{service}\" pool \"{pool}\" has no healthy backend")
            }
            ProxyError::Unreachable { service, pool, backend } => write!(
                f,
                "502 service \"{service}\" pool \"{pool}\": no backend could be reached (last tried {backend})"
            ),
            ProxyError::Upstream { service, pool, backend } => {
                write!(f, "502 service \"{service}\" pool \"{pool}\": backend {backend} failed before answering")
            }
            ProxyError::Timeout { service, pool, backend } => write!(
                f,
                "504 service \"{service}\" pool \"{pool}\": backend {backend} sent no response headers in time"
            ),
            ProxyError::Busy { service, pool, backend } => {
                write!(f, "503 service \"{service}\" pool \"{pool}\": backend {backend} is at max_upstream_connections")
            }
            ProxyError::MethodNotAllowed => write!(f, "405 CONNECT is not forwarded"),
        }
    }
}
