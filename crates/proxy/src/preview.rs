//! Preview tokens: let a tester reach a pool before the public does.
//!
//! A token is `POOL.EXPIRY.MAC`: EXPIRY in Unix seconds, MAC the hex HMAC-SHA256
//! (key from `[admin] preview_key_file` or generated beside the state file) over
//! `v1\nSERVICE\nPOOL\nEXPIRY`. The service is in the MAC but not in the token, so
//! a token presented to another service simply fails verification.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Cookie that carries a preview token.
pub const COOKIE: &str = "sy_preview";
/// Header that carries a preview token.
pub const HEADER: &str = "x-switchyard-preview";
/// Shortest and longest token lifetimes.
pub const TTL_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30 * 86_400));

/// The secret both sides share.
pub struct PreviewKey(Vec<u8>);

impl PreviewKey {
    /// A key from raw bytes (at least 16).
    pub fn new(bytes: Vec<u8>) -> Option<PreviewKey> {
        (bytes.len() >= 16).then_some(PreviewKey(bytes))
    }

    /// The key's bytes (to share it with other replicas, SPEC §8).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, service: &str, pool: &str, expires: u64) -> HmacSha256 {
        // HMAC accepts keys of any length.
        let mut m = HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(format!("v1\n{service}\n{pool}\n{expires}").as_bytes());
        m
    }

    /// A token for `pool` of `service`, valid until `expires` (Unix seconds).
    pub fn issue(&self, service: &str, pool: &str, expires: u64) -> String {
        let tag = self.mac(service, pool, expires).finalize().into_bytes();
        let mut out = format!("{pool}.{expires}.");
        for b in tag {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// The pool a token grants for `service` now, or `None` if it is malformed,
    /// expired or not for this service. The MAC is compared in constant time.
    pub fn verify<'t>(&self, service: &str, token: &'t [u8], now: u64) -> Option<&'t str> {
        let token = std::str::from_utf8(token).ok()?;
        let mut parts = token.rsplitn(3, '.');
        let (mac_hex, expires, pool) = (parts.next()?, parts.next()?, parts.next()?);
        let expires: u64 = expires.parse().ok()?;
        if expires <= now || mac_hex.len() != 64 {
            return None;
        }
        let mut tag = [0u8; 32];
        for (i, byte) in tag.iter_mut().enumerate() {
            *byte = u8::from_str_radix(mac_hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        self.mac(service, pool, expires).verify_slice(&tag).ok()?;
        Some(pool)
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PreviewKey {
        PreviewKey::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    #[test]
    fn issued_token_verifies_for_its_service_until_expiry() {
        let t = key().issue("shop", "green", 1000);
        assert_eq!(key().verify("shop", t.as_bytes(), 999), Some("green"));
        assert_eq!(key().verify("shop", t.as_bytes(), 1000), None, "expired");
        assert_eq!(key().verify("api", t.as_bytes(), 999), None, "other service");
    }

    #[test]
    fn tampered_tokens_fail() {
        let t = key().issue("shop", "green", 1000);
        let retargeted = t.replacen("green", "blue", 1);
        assert_eq!(key().verify("shop", retargeted.as_bytes(), 1), None);
        let extended = t.replacen("1000", "9999", 1);
        assert_eq!(key().verify("shop", extended.as_bytes(), 1), None);
        let other_key = PreviewKey::new(vec![7; 32]).unwrap();
        assert_eq!(other_key.verify("shop", t.as_bytes(), 1), None);
        for junk in ["", "green", "green.1000", "green.x.00", "..", "green.1000.zz"] {
            assert_eq!(key().verify("shop", junk.as_bytes(), 1), None, "{junk}");
        }
    }
}
