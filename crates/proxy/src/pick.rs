//! The allocation-free pieces of the routing decision: host normalisation, a fast
//! hasher for the host map, a thread-local random source, and power-of-two choices.

use crate::backend::Backend;
use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

/// Longest host name we look up (DNS allows 253).
const MAX_HOST: usize = 255;

/// Calls `f` with `host` lower-cased and without its port, using a stack buffer.
/// Works on bytes: a host that is not ASCII simply matches nothing.
pub(crate) fn with_host_key<R>(host: &[u8], f: impl FnOnce(&[u8]) -> Option<R>) -> Option<R> {
    let flags = scan(host);
    let host = if flags & 1 != 0 { strip_port(host) } else { host };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if flags & 2 == 0 {
        return f(host);
    }
    if host.len() > MAX_HOST {
        return None;
    }
    let mut buf = [0u8; MAX_HOST];
    let lower = &mut buf[..host.len()];
    lower.copy_from_slice(host);
    lower.make_ascii_lowercase();
    f(lower)
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Bit 0: the host has a `:` (maybe a port); bit 1: it has an upper-case ASCII letter.
/// Eight bytes per step (SWAR): a byte loop costs ~7 instructions a byte.
fn scan(host: &[u8]) -> u8 {
    let mut colon = 0;
    let mut upper = 0;
    let mut step = |w: u64| {
        // A zero byte in `w ^ ':'` is a colon (the borrow trick: exact for "any").
        let x = w ^ (ONES * u64::from(b':'));
        colon |= x.wrapping_sub(ONES) & !x & HIGHS;
        upper |= upper_marks(w);
    };
    let mut chunks = host.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        step(u64::from_ne_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // Zero padding is neither a colon nor a letter.
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        step(u64::from_ne_bytes(w));
    }
    u8::from(colon != 0) | (u8::from(upper != 0) << 1)
}

/// 0x80 in every byte of `w` that is an ASCII capital, 0 elsewhere. On 7-bit bytes,
/// adding 0x80 - c sets a byte's top bit iff the byte >= c (no carry between bytes);
/// bytes that were >= 0x80 (not ASCII) are masked out by `!w`.
fn upper_marks(w: u64) -> u64 {
    let low = w & !HIGHS;
    (low + ONES * (0x80 - u64::from(b'A'))) & !(low + ONES * (0x80 - u64::from(b'Z') - 1)) & !w & HIGHS
}

/// Without the port: up to the last `:` that is not inside `[…]` (an IPv6 literal).
fn strip_port(host: &[u8]) -> &[u8] {
    let Some(i) = host.iter().rposition(|&b| b == b':') else { return host };
    // In `[v6]` and `[v6]:port` only a colon right after the `]` starts a port.
    if host.first() == Some(&b'[') && (i == 0 || host[i - 1] != b']') {
        return host;
    }
    &host[..i]
}

/// FxHash: a few instructions per word. The map is never written from the network,
/// so a keyed hash buys nothing there. Hand-written (ten lines) rather than a crate
/// because it sits in the routing decision that `benches/routing.rs` and
/// `benches/route_ir.rs` hold to ~40–50 ns / ~600 instructions on 1,000 services.
#[derive(Clone, Copy, Default)]
pub(crate) struct FxBuild;

pub(crate) struct Fx(u64);

impl BuildHasher for FxBuild {
    type Hasher = Fx;
    fn build_hasher(&self) -> Fx {
        Fx(0)
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

thread_local! {
    // `const`: no lazy-initialisation check per access; seeded on first use.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

fn seed() -> u64 {
    // RandomState is seeded per thread from the OS; one hash of nothing gives 64 random bits.
    std::collections::hash_map::RandomState::new().build_hasher().finish() | 1
}

/// A uniform draw in `0..n` (xorshift64*, multiply-shift reduction). Hand-written
/// rather than `rand`: one thread-local word and five instructions per request in
/// the routing decision (counted by `benches/route_ir.rs`); the draws pick pools and
/// backends, nothing secret (preview keys use `getrandom`).
pub(crate) fn below(n: u32) -> u32 {
    RNG.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = seed();
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        // r < 2^32, so r * n >> 32 < n fits u32.
        ((r * u64::from(n)) >> 32) as u32
    })
}

/// Power of two choices over healthy backends, skipping `not` (the one that just
/// failed). When every candidate is only passively ejected, one is tried anyway:
/// a connect blip must not turn into an outage.
pub(crate) fn backend(backends: &[Arc<Backend>], not: Option<usize>) -> Option<usize> {
    let usable = |i: usize| not != Some(i) && backends[i].is_healthy();
    let n = backends.len();
    let picked = match n {
        0 => return None,
        1 => usable(0).then_some(0),
        _ => {
            // usize fits u32 for any real pool.
            let len = u32::try_from(n).unwrap_or(u32::MAX);
            let a = below(len) as usize;
            // A second, distinct index; a + 1 + r < 2n, so one subtraction wraps it (no division).
            // With two backends the other one is the only choice: no second draw.
            let b = a + 1 + if n == 2 { 0 } else { below(len - 1) as usize };
            let b = if b >= n { b - n } else { b };
            match (usable(a), usable(b)) {
                (true, true) => Some(if backends[b].inflight() < backends[a].inflight() { b } else { a }),
                (true, false) => Some(a),
                (false, true) => Some(b),
                (false, false) => (0..n).find(|&i| usable(i)),
            }
        }
    };
    picked.or_else(|| (0..n).find(|&i| not != Some(i) && backends[i].is_check_healthy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_lose_case_port_and_trailing_dot() {
        let key = |h: &str| with_host_key(h.as_bytes(), |k| Some(String::from_utf8(k.to_vec()).unwrap())).unwrap();
        assert_eq!(key("Shop.Example.COM:8080"), "shop.example.com");
        assert_eq!(key("shop.example.com."), "shop.example.com");
        assert_eq!(key("[::1]:80"), "[::1]");
        assert_eq!(key("[::1]"), "[::1]");
        assert_eq!(key("[::FFFF:1]:8443"), "[::ffff:1]");
        assert_eq!(
            key("A-Very-Long-Host-Name.With-Many.Labels.EXAMPLE.com:1"),
            "a-very-long-host-name.with-many.labels.example.com"
        );
        assert_eq!(key("@[`{Z"), "@[`{z");
    }

    #[test]
    fn scan_finds_colons_and_capitals_in_every_position_and_nothing_else() {
        for len in 0..20 {
            for at in 0..len {
                for (c, want) in
                    [(b':', 1), (b'A', 2), (b'Z', 2), (b'M', 2), (b'@', 0), (b'[', 0), (0xC1, 0), (0xFF, 0)]
                {
                    let mut host = vec![b'a'; len];
                    host[at] = c;
                    assert_eq!(scan(&host), want, "{host:?}");
                }
            }
            assert_eq!(scan(&vec![b'z'; len]), 0);
        }
        assert_eq!(scan(b"Shop.example.com:8080"), 3);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            let v = below(10) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn backend_skips_unhealthy_and_excluded() {
        let bs: Vec<_> = ["a:1", "b:1", "c:1"].iter().map(|a| Arc::new(Backend::new(a))).collect();
        bs[0].set_healthy(false);
        for _ in 0..200 {
            assert_eq!(backend(&bs, Some(1)), Some(2));
        }
        bs[2].set_healthy(false);
        assert!(backend(&bs, Some(1)).is_none());
    }

    #[test]
    fn ejected_backends_are_avoided_but_tried_when_nothing_else_is_left() {
        let bs: Vec<_> = ["a:1", "b:1"].iter().map(|a| Arc::new(Backend::new(a))).collect();
        bs[0].connect_failed();
        for _ in 0..100 {
            assert_eq!(backend(&bs, None), Some(1));
        }
        bs[1].connect_failed();
        assert!(backend(&bs, None).is_some(), "panic routing: all ejected, still try one");
        bs[0].set_healthy(false);
        bs[1].set_healthy(false);
        assert!(backend(&bs, None).is_none(), "checks say down: nothing to try");
    }
}
