//! Browser safety (SPEC §4): a web page on another site must not be able to
//! drive the admin API, token or not. Three rules, checked before auth and
//! routing: a foreign `Origin` is refused, a `Host` that is not an IP address,
//! `localhost` or a name in `[admin] hosts` is refused (DNS rebinding), and a
//! POST with a body must say `Content-Type: application/json` (a page can only
//! send `text/plain` and form types without a CORS preflight).

use http::{HeaderMap, HeaderValue, StatusCode, header};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a request was refused: the status and the `error` message.
pub type Refusal = (StatusCode, String);

/// Refuses a request whose `Origin` is not the admin API's own: `http://` +
/// its `Host`, or `https://` + its `Host` when that is a name `listed` in
/// `[admin] hosts` (the API's page reached through a TLS-terminating proxy;
/// an IP or `localhost` is only ever this plain-HTTP listener). Every path.
pub fn origin(headers: &HeaderMap, listed: impl Fn(&str) -> bool) -> Result<(), Refusal> {
    let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
    for o in headers.get_all(header::ORIGIN) {
        let https_ok = || matches!(host.and_then(host_name), Some(Host::Name(n)) if listed(&n));
        if !same_origin(o.as_bytes(), host, https_ok) {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "cross-origin request refused: Origin {} is not this admin API's own origin; \
                     call the admin API from a command-line client (curl, switchyard ctl) or a page it serves itself",
                    shown(o)
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a request whose `Host` is neither an IP address, `localhost`, nor
/// a name in `allowed` (lower-case, from `[admin] hosts`). No `Host` (HTTP/1.0)
/// is fine. `allowed` is only called for a name that needs it.
pub fn host(headers: &HeaderMap, allowed: impl FnOnce(&str) -> bool) -> Result<(), Refusal> {
    let mut values = headers.get_all(header::HOST).iter();
    let Some(value) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err((StatusCode::BAD_REQUEST, "more than one Host header".into()));
    }
    let ok = match host_name(value.as_bytes()) {
        Some(Host::Ip | Host::Localhost) => true,
        Some(Host::Name(name)) => allowed(&name),
        None => false,
    };
    if ok {
        return Ok(());
    }
    Err((
        StatusCode::FORBIDDEN,
        format!(
            "Host {} is not an IP address, localhost, or a name in [admin] hosts; \
             to reach the admin API by this name, add it to [admin] hosts in the config and reload",
            shown(value)
        ),
    ))
}

/// Refuses a POST that has (or may have) a body without `Content-Type:
/// application/json` (parameters such as `; charset=utf-8` are fine).
pub fn json_body(headers: &HeaderMap, may_have_body: bool) -> Result<(), Refusal> {
    if !may_have_body {
        return Ok(());
    }
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (first, second) = (values.next(), values.next());
    if let (Some(ct), None) = (first, second)
        && is_json(ct.as_bytes())
    {
        return Ok(());
    }
    let got = match (first, second) {
        (None, _) => "none".to_owned(),
        (Some(_), Some(_)) => "more than one".to_owned(),
        (Some(ct), None) => shown(ct),
    };
    Err((
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("a POST with a body needs Content-Type: application/json (got {got})"),
    ))
}

/// Whether a `Content-Type` value's media type is `application/json`.
fn is_json(value: &[u8]) -> bool {
    let media = value.split(|&b| b == b';').next().unwrap_or_default();
    media.trim_ascii().eq_ignore_ascii_case(b"application/json")
}

/// What a `Host` value names.
#[derive(Debug, PartialEq, Eq)]
enum Host {
    Ip,
    Localhost,
    /// A DNS name, lower-cased, without port.
    Name(String),
}

/// Parses `host[:port]`, `v4[:port]` or `[v6][:port]`; `None` when malformed.
fn host_name(value: &[u8]) -> Option<Host> {
    let text = std::str::from_utf8(value).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<Ipv6Addr>().ok()?;
        return port_ok(after).then_some(Host::Ip);
    }
    let (name, after) = text.find(':').map_or((text, ""), |i| text.split_at(i));
    if !port_ok(after) || name.is_empty() {
        return None;
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Some(Host::Ip);
    }
    if name.eq_ignore_ascii_case("localhost") {
        return Some(Host::Localhost);
    }
    Some(Host::Name(name.to_ascii_lowercase()))
}

/// Empty, or `:` and a port number.
fn port_ok(after: &str) -> bool {
    match after.strip_prefix(':') {
        None => after.is_empty(),
        Some(p) => p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok(),
    }
}

/// Whether `origin` is `http://` + `host`, case-insensitive, port 80 implied.
/// `https_ok` says whether `https://` + `host` may count (see [`origin`]).
fn same_origin(origin: &[u8], host: Option<&[u8]>, https_ok: impl FnOnce() -> bool) -> bool {
    let Some(host) = host else { return false };
    let scheme = |name: &[u8]| origin.get(..name.len()).is_some_and(|s| s.eq_ignore_ascii_case(name));
    let (rest, default_port): (&[u8], &'static [u8]) = if scheme(b"http://") {
        (&origin[7..], b":80")
    } else if scheme(b"https://") && https_ok() {
        (&origin[8..], b":443")
    } else {
        return false;
    };
    let strip = |v: &[u8]| -> Vec<u8> {
        let v = v.to_ascii_lowercase();
        match v.strip_suffix(default_port) {
            Some(base) if !base.is_empty() => base.to_vec(),
            _ => v,
        }
    };
    !host.is_empty() && strip(rest) == strip(host)
}

/// A header value for a message: quoted text, or its bytes when not text.
fn shown(v: &HeaderValue) -> String {
    match v.to_str() {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("{:?}", v.as_bytes()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_classified() {
        for ip in ["127.0.0.1", "10.0.0.7:9901", "[::1]", "[::1]:9901", "[fe80::1]:80"] {
            assert_eq!(host_name(ip.as_bytes()), Some(Host::Ip), "{ip}");
        }
        for lh in ["localhost", "LocalHost:9901"] {
            assert_eq!(host_name(lh.as_bytes()), Some(Host::Localhost), "{lh}");
        }
        assert_eq!(host_name(b"Proxy-1.Internal:9901"), Some(Host::Name("proxy-1.internal".into())));
        for bad in ["", "::1", "[::1", "[::1]x", "[nope]", "a:b", "a:", "a:99999", "a:+1", "a:1:2", ":80"] {
            assert_eq!(host_name(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(host_name(b"\xff"), None);
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let same = |o: &str, h: &str| same_origin(o.as_bytes(), Some(h.as_bytes()), || false);
        let listed = |o: &str, h: &str| same_origin(o.as_bytes(), Some(h.as_bytes()), || true);
        assert!(same("http://127.0.0.1:9901", "127.0.0.1:9901"));
        assert!(same("HTTP://LocalHost:9901", "localhost:9901"));
        assert!(same("http://localhost", "localhost:80"));
        assert!(same("http://localhost:80", "localhost"));
        assert!(!same("https://127.0.0.1:9901", "127.0.0.1:9901"));
        assert!(!same("https://admin.example", "admin.example"));
        assert!(listed("https://admin.example", "admin.example:443"));
        assert!(listed("https://admin.example:8443", "admin.example:8443"));
        assert!(!listed("https://admin.example", "admin.example:80"));
        assert!(!listed("http://admin.example", "admin.example:443"));
        assert!(!listed("ftp://127.0.0.1:9901", "127.0.0.1:9901"));
        assert!(!same("http://127.0.0.1:9902", "127.0.0.1:9901"));
        assert!(!same("http://evil.example", "127.0.0.1:9901"));
        assert!(!same("null", "127.0.0.1:9901"));
        assert!(!same("http://", ""));
        assert!(!same_origin(b"http://127.0.0.1:9901", None, || true));
    }

    #[test]
    fn content_type_media_type_is_compared_without_parameters() {
        assert!(is_json(b"application/json"));
        assert!(is_json(b"Application/JSON; charset=utf-8"));
        assert!(is_json(b" application/json ;charset=UTF-8"));
        assert!(!is_json(b"text/plain"));
        assert!(!is_json(b"application/jsonx"));
        assert!(!is_json(b"application/x-www-form-urlencoded"));
        assert!(!is_json(b""));
    }
}
