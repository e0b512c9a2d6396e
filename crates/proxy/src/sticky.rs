//! Sticky assignment: a client's key (cookie or header value) hashes to a point
//! in [0, 10000) — hundredths of a percent, the weights' own unit — and pools own
//! consecutive ranges of that interval in config order, each as wide as its
//! weight. With two pools, raising green's weight only shrinks blue's range from
//! the top, so clients only ever move blue → green (and back when it is lowered).
//!
//! The hash is FNV-1a 64 over `service name, 0x00, key`, then murmur3's fmix64
//! finalizer (FNV alone spreads sequential ids like `user-1`, `user-2` unevenly),
//! reduced to [0, 10000) by multiply-shift of the top 32 bits. Fixed and
//! documented, so assignments survive restarts and upgrades and can be
//! reproduced outside the proxy — which is why it is written out here rather than
//! taken from a hashing crate whose output may change between versions (it costs
//! a few ns per request, measured with the routing benches).

use crate::pick;
use http::HeaderMap;
use http::header::COOKIE;
use std::fmt::Write as _;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The point in [0, 10000) of `key` for `service`.
pub fn point(service: &str, key: &[u8]) -> u32 {
    let mut h = FNV_OFFSET;
    for &b in service.as_bytes().iter().chain(&[0u8]).chain(key) {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    // Multiply-shift of the top 32 bits: < 10000, fits u32.
    (((h >> 32) * 10_000) >> 32) as u32
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    cookie_in(headers.get_all(COOKIE).iter().map(http::HeaderValue::as_bytes), name)
}

/// The value of cookie `name` in `Cookie` line values.
pub(crate) fn cookie_in<'a>(mut lines: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a [u8]> {
    lines.find_map(|v| {
        v.split(|&b| b == b';').find_map(|pair| {
            let pair = pair.trim_ascii();
            let rest = pair.strip_prefix(name.as_bytes())?;
            rest.strip_prefix(b"=").filter(|v| !v.is_empty())
        })
    })
}

/// A fresh random key for a client without one: 16 hex digits (64 bits).
pub(crate) fn new_key() -> String {
    let hi = u64::from(pick::below(u32::MAX));
    let lo = u64::from(pick::below(u32::MAX));
    let mut s = String::with_capacity(16);
    let _ = write!(s, "{:016x}", (hi << 32) | lo);
    s
}

/// `Set-Cookie` for a new key.
pub(crate) fn set_cookie(name: &str, key: &str, max_age_secs: u64) -> String {
    format!("{name}={key}; Max-Age={max_age_secs}; Path=/; HttpOnly; SameSite=Lax")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn points_are_stable_and_spread() {
        assert_eq!(point("shop", b"user-1"), point("shop", b"user-1"));
        assert_ne!(point("shop", b"user-1"), point("api", b"user-1"));
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            buckets[(point("shop", format!("k{i}").as_bytes()) / 1000) as usize] += 1;
        }
        assert!(buckets.iter().all(|&b| (850..=1150).contains(&b)), "{buckets:?}");
    }

    #[test]
    fn finds_the_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; sy_pool=abc123;b=2"));
        assert_eq!(cookie(&h, "sy_pool"), Some(&b"abc123"[..]));
        assert_eq!(cookie(&h, "sy"), None);
        assert_eq!(cookie(&h, "b"), Some(&b"2"[..]));
        assert_eq!(new_key().len(), 16);
    }
}
