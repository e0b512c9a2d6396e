//! Header hygiene between client and backend: hop-by-hop removal, X-Forwarded-*,
//! the routed host as `Host`, and cookies (HTTP/2 fields joined, the proxy's own
//! preview cookie removed).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the common non-standard ones).
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes hop-by-hop headers and every header the `Connection` header names.
/// `Upgrade` is removed too; the upgrade path puts it back deliberately.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass comparing names (no hashing) finds most messages clean, or with
    // only `Connection`; ten hashed removals ran on every message before.
    if !headers.keys().any(|k| k == header::UPGRADE || HOP_BY_HOP.contains(k)) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // The usual tokens name nothing to remove beyond the list below; skipping
            // them keeps the common `Connection: keep-alive` free of allocations.
            .filter(|n| !n.eq_ignore_ascii_case("keep-alive") && !n.eq_ignore_ascii_case("close"))
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Whether the client announced it accepts trailers (`TE: trailers`).
pub(crate) fn wants_trailers(headers: &HeaderMap) -> bool {
    has_token(headers, &header::TE, "trailers")
}

/// Whether `token` is among the comma-separated values of header `name`
/// (case-insensitive; a `/version` or `;parameter` after it is ignored).
pub(crate) fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes().split(|&b| b == b',').any(|t| {
            let t = t.split(|&b| b == b'/' || b == b';').next().unwrap_or_default();
            t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())
        })
    })
}

/// Adds `X-Forwarded-For` (appended to what the client sent), `-Proto` and `-Host`,
/// and sets `Host` to `host`, the host the request was routed by: an absolute-form
/// URI's or HTTP/2 `:authority` replaces whatever `Host` the client also sent.
/// `client` is the client's address as a header value, made once per connection;
/// `host` is the request's host (the `Host` header's value is a cheap clone).
pub(crate) fn add_forwarded(
    headers: &mut HeaderMap,
    client: &HeaderValue,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    let xff = match joined(headers, &X_FORWARDED_FOR) {
        Some(prev) => HeaderValue::try_from(format!("{prev}, {}", client.to_str().unwrap_or_default())).ok(),
        None => Some(client.clone()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(h) = host {
        headers.insert(header::HOST, h.clone());
        headers.insert(X_FORWARDED_HOST.clone(), h);
    }
}

/// An authority without its `userinfo@` part: the host and port a `Host` header carries.
pub(crate) fn authority_host(authority: &str) -> &str {
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

/// Joins several `Cookie` fields (HTTP/2 sends one per cookie) into one with `; `
/// for HTTP/1 backends, and removes the `sy_preview` pair, which is the proxy's.
/// A single `Cookie` without that pair (the common case) is left as it is.
pub(crate) fn scrub_cookies(headers: &mut HeaderMap, drop_name: &str) {
    let mut values = headers.get_all(header::COOKIE).iter();
    let Some(first) = values.next() else { return };
    if values.next().is_none() && !first.as_bytes().split(|&b| b == b';').any(|p| is_pair(p, drop_name)) {
        return;
    }
    let mut joined: Vec<u8> = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        for pair in v.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() || is_pair(pair, drop_name) {
                continue;
            }
            if !joined.is_empty() {
                joined.extend_from_slice(b"; ");
            }
            joined.extend_from_slice(pair);
        }
    }
    let value = HeaderValue::from_bytes(&joined).ok().filter(|_| !joined.is_empty());
    headers.remove(header::COOKIE);
    if let Some(v) = value {
        headers.insert(header::COOKIE, v);
    }
}

/// Whether `pair` (`name=value`, maybe with spaces around) is the cookie `name`.
fn is_pair(pair: &[u8], name: &str) -> bool {
    pair.trim_ascii().strip_prefix(name.as_bytes()).is_some_and(|rest| rest.trim_ascii_start().starts_with(b"="))
}

/// The client address as a header value.
pub(crate) fn client_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::try_from(ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// All values of a header joined by `, ` (several `X-Forwarded-For` lines are one list).
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut out: Option<String> = None;
    for v in headers.get_all(name) {
        let v = v.to_str().ok()?;
        match &mut out {
            Some(s) => {
                s.push_str(", ");
                s.push_str(v);
            }
            None => out = Some(v.to_owned()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, X-Secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn appends_to_existing_forwarded_for_and_sets_host() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        let client = client_value("127.0.0.1".parse().unwrap());
        add_forwarded(&mut h, &client, "http", Some(HeaderValue::from_static("shop.example.com")));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "shop.example.com");
        assert_eq!(h[header::HOST], "shop.example.com");
    }

    #[test]
    fn the_routed_host_replaces_the_clients_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("other"));
        let client = client_value("127.0.0.1".parse().unwrap());
        add_forwarded(&mut h, &client, "http", Some(HeaderValue::from_static("shop.example.com")));
        assert_eq!(h.get_all(header::HOST).iter().collect::<Vec<_>>(), ["shop.example.com"]);
        assert_eq!(h["x-forwarded-host"], "shop.example.com");
        assert_eq!(authority_host("user:pw@shop.example.com:8080"), "shop.example.com:8080");
        assert_eq!(authority_host("shop.example.com"), "shop.example.com");
    }

    fn cookies(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, HeaderValue::from_static(v));
        }
        scrub_cookies(&mut h, "sy_preview");
        h
    }

    #[test]
    fn cookie_fields_are_joined_and_the_preview_cookie_removed() {
        let one =
            |h: HeaderMap| h.get_all(header::COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(one(cookies(&["a=1", "b=2"])), ["a=1; b=2"]);
        assert_eq!(one(cookies(&["a=1; sy_preview=tok; b=2"])), ["a=1; b=2"]);
        assert_eq!(one(cookies(&["sy_preview=tok", "c=3"])), ["c=3"]);
        assert!(one(cookies(&["sy_preview=tok"])).is_empty());
        assert_eq!(one(cookies(&["sy_preview_other=1; a=2"])), ["sy_preview_other=1; a=2"]);
        assert_eq!(one(cookies(&["a=1"])), ["a=1"]);
    }
}
