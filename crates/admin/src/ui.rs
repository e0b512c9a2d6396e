//! The dashboard's files (SPEC §10): one page, its stylesheet and scripts,
//! embedded in the binary and served under `/ui` without a token (the page asks
//! for one and reads the JSON API with it).
//!
//! Caching: the page is revalidated on every load (`no-cache` + `ETag`); it
//! names its assets with `?v=BUILD`, a hash of every embedded file, and those
//! URLs are cached for a year, so a new binary's page asks for new assets.
//! Every answer carries SPEC §10's `Content-Security-Policy` (no inline script
//! or style, no request beyond this origin) and refuses to be framed.

use crate::respond::{self, Resp};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

/// SPEC §10's policy.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The page; `{{v}}` stands for the build hash in asset URLs.
const INDEX: &str = include_str!("../ui/index.html");

/// The assets under `/ui/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../ui/style.css")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../ui/api.js")),
    ("view.js", "text/javascript; charset=utf-8", include_str!("../ui/view.js")),
    ("rollout.js", "text/javascript; charset=utf-8", include_str!("../ui/rollout.js")),
    ("actions.js", "text/javascript; charset=utf-8", include_str!("../ui/actions.js")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../ui/app.js")),
];

/// A hash of every embedded file: changes whenever one does.
static BUILD: LazyLock<String> = LazyLock::new(|| {
    let mut h = std::hash::DefaultHasher::new();
    INDEX.hash(&mut h);
    for (name, _, body) in ASSETS {
        (name, body).hash(&mut h);
    }
    format!("{:016x}", h.finish())
});

/// The page with its asset URLs versioned.
static PAGE: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(INDEX.replace("{{v}}", &BUILD)));

/// Answers `/ui` and `/ui/NAME`; `rest` is the path after `ui`.
pub fn serve(method: &Method, rest: &[&str], query: Option<&str>, headers: &HeaderMap) -> Resp {
    if method != Method::GET && method != Method::HEAD {
        let mut r = respond::error(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on the dashboard"));
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        secure(r.headers_mut());
        return r;
    }
    let etag = format!("\"{}\"", *BUILD);
    let (body, content_type, immutable) = match rest {
        [] | ["index.html"] => (PAGE.clone(), "text/html; charset=utf-8", false),
        [name] => match ASSETS.iter().find(|(n, _, _)| n == name) {
            Some((_, ct, body)) => {
                let current =
                    query.is_some_and(|q| q.split('&').any(|kv| kv.strip_prefix("v=") == Some(BUILD.as_str())));
                (Bytes::from_static(body.as_bytes()), *ct, current)
            }
            None => return not_found(rest),
        },
        _ => return not_found(rest),
    };
    let fresh = headers.get_all(header::IF_NONE_MATCH).iter().any(|v| matches_etag(v.as_bytes(), &etag));
    let mut r = if fresh {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Full::new(body));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = r.headers_mut();
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(tag) = HeaderValue::try_from(etag) {
        h.insert(header::ETAG, tag);
    }
    secure(h);
    r
}

/// `If-None-Match` (a list, weak tags and `*` allowed) names `etag`.
fn matches_etag(value: &[u8], etag: &str) -> bool {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii).any(|t| {
        let t = t.strip_prefix(b"W/").unwrap_or(t);
        t == b"*" || t == etag.as_bytes()
    })
}

fn not_found(rest: &[&str]) -> Resp {
    let mut r = respond::error(StatusCode::NOT_FOUND, format!("no such dashboard file /ui/{}", rest.join("/")));
    secure(r.headers_mut());
    r
}

/// The headers every dashboard answer carries.
fn secure(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_a_star() {
        for v in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", " \"x\" ,W/\"abc\" ", "*"] {
            assert!(matches_etag(v.as_bytes(), "\"abc\""), "{v}");
        }
        for v in ["\"abcd\"", "abc", "", "\"x\", \"y\"", "W/abc"] {
            assert!(!matches_etag(v.as_bytes(), "\"abc\""), "{v}");
        }
    }

    #[test]
    fn the_page_names_every_asset_with_the_build_hash_and_nothing_else() {
        let page = std::str::from_utf8(&PAGE).unwrap_or_default();
        for (name, _, _) in ASSETS {
            assert!(page.contains(&format!("/ui/{name}?v={}", *BUILD)), "{name} not linked");
        }
        assert!(!page.contains("{{"), "placeholder left in the page");
        // No inline script or style: the CSP would block them.
        assert!(!page.contains("<style") && !page.contains(" style="), "inline style");
        for (at, _) in page.match_indices(" on") {
            let name: String = page[at + 3..].chars().take_while(char::is_ascii_lowercase).collect();
            assert!(!page[at + 3 + name.len()..].starts_with('='), "inline handler on{name}");
        }
        for chunk in page.split("<script").skip(1) {
            assert!(chunk.trim_start().starts_with("src=") || chunk.contains(" src="), "inline script");
        }
    }
}
