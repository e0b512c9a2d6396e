//! Which pool a request goes to — preview token → override header → sticky key →
//! weighted draw — read from its header lines through `Fields`, so hyper's
//! `HeaderMap` and the HTTP/1 path's parsed slices share the one decision.

use crate::forward::PREVIEW_HEADER;
use crate::preview::{self, PreviewKey};
use crate::service_route::ServiceRoute;
use crate::sticky;
use http::header::COOKIE;
use http::{HeaderMap, HeaderName};
use switchyard_config::Sticky;

/// A request's header lines, as the routing decision reads them.
pub(crate) trait Fields {
    /// The first value of header `name`.
    fn field(&self, name: &HeaderName) -> Option<&[u8]>;
    /// The value of cookie `name` in the `Cookie` lines.
    fn cookie(&self, name: &str) -> Option<&[u8]>;
}

impl Fields for HeaderMap {
    fn field(&self, name: &HeaderName) -> Option<&[u8]> {
        self.get(name).map(http::HeaderValue::as_bytes)
    }

    fn cookie(&self, name: &str) -> Option<&[u8]> {
        sticky::cookie(self, name)
    }
}

impl Fields for [httparse::Header<'_>] {
    fn field(&self, name: &HeaderName) -> Option<&[u8]> {
        // `HeaderName`s are lower-case; the client's lines may not be.
        self.iter().find(|h| h.name.eq_ignore_ascii_case(name.as_str())).map(|h| h.value)
    }

    fn cookie(&self, name: &str) -> Option<&[u8]> {
        let lines = self.iter().filter(|h| h.name.eq_ignore_ascii_case(COOKIE.as_str())).map(|h| h.value);
        sticky::cookie_in(lines, name)
    }
}

/// Preview token → override header → sticky key → weighted draw. Also returns the `Set-Cookie`
/// for a client that had no sticky cookie yet (routed by its new key already).
pub(crate) fn choose_pool<F: Fields + ?Sized>(
    service: &ServiceRoute,
    req: &F,
    key: Option<&PreviewKey>,
) -> (usize, Option<String>) {
    if let Some(key) = key {
        let token = req.field(&PREVIEW_HEADER).or_else(|| req.cookie(preview::COOKIE));
        if let Some(token) = token {
            let granted = key.verify(&service.name, token, preview::now());
            match granted.and_then(|p| service.pools.iter().position(|x| &*x.name == p)) {
                Some(i) => return (i, None),
                // Ignored (normal routing), and counted once for this request.
                None => service.preview_rejected(),
            }
        }
    }
    if let Some(name) = &service.override_header {
        let wanted = req.field(name);
        if let Some(i) = wanted.and_then(|w| service.pools.iter().position(|p| p.name.as_bytes() == w)) {
            return (i, None);
        }
    }
    match &service.sticky {
        None => (service.draw_pool(), None),
        Some(Sticky::Header { .. }) => match service.sticky_header.as_ref().and_then(|h| req.field(h)) {
            Some(key) => (service.pool_at(sticky::point(&service.name, key)), None),
            None => (service.draw_pool(), None),
        },
        Some(Sticky::Cookie { name, max_age }) => match req.cookie(name) {
            Some(key) => (service.pool_at(sticky::point(&service.name, key)), None),
            None => {
                let key = sticky::new_key();
                let pool = service.pool_at(sticky::point(&service.name, key.as_bytes()));
                (pool, Some(sticky::set_cookie(name, &key, max_age.as_secs())))
            }
        },
    }
}
