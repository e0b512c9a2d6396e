//! A bounded property test of request heads: random request lines, header lines
//! and bytes (bare CR, obs-fold, huge headers, NULs, invalid UTF-8, pipelined
//! requests, truncated heads, broken chunking) written to an in-process proxy
//! over raw sockets. Whatever comes in, the proxy never panics, each connection
//! ends within a bound with nothing but well-formed HTTP/1 responses before the
//! close, and afterwards a normal request is still answered 200.
//!
//! Cases come from a seeded generator (`SWITCHYARD_FUZZ_SEED` to replay one run,
//! `SWITCHYARD_FUZZ_CASES` for more cases); a failure prints the case's bytes.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchyard_test_support::{Conn, RawConn, TestProxy, Upstream, config_from};

/// xorshift64*: small, seeded, good enough to pick among shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

const METHODS: &[&[u8]] = &[b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"G\0T", b"", b"get", b"X-CUSTOM", b"CONNECT"];
const TARGETS: &[&[u8]] = &[
    b"/",
    b"/headers",
    b"/status/204",
    b"/status/500",
    b"/upload",
    b"*",
    b"http://shop.example.com/x",
    b"/a b",
    b"/\xff\xfe",
    b"/%00",
    b"//..//../etc/passwd",
    b"",
];
const VERSIONS: &[&[u8]] = &[b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"HTTP/1", b"http/1.1", b"HTTP/9.9"];
const GOOD_HEADERS: &[&[u8]] = &[
    b"Host: shop.example.com:8080",
    b"Connection: close",
    b"Connection: keep-alive, X-Gone",
    b"X-Gone: 1",
    b"Content-Length: 0",
    b"Content-Length: 5",
    b"Transfer-Encoding: chunked",
    b"Upgrade: h2c",
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Expect: 100-continue",
    b"Cookie: a=1; sy_preview=x",
    b"Cookie: b=2",
    b"X-Switchyard-Preview: blue.1.x",
    b"TE: trailers",
    b"X-Empty:",
    b"Accept: */*",
];
const BAD_HEADERS: &[&[u8]] = &[
    b"Host:",
    b"Host: x",
    b"Host: a\"b",
    b"Content-Length: -1",
    b"Content-Length: 99999999999999999999999",
    b"Content-Length: 3, 4",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: identity",
    b"X-Folded: a\r\n b",
    b"X-Bare-CR: a\rb",
    b"X-Nul: a\0b",
    b"X-Utf8: \xc3\x28\xff",
    b"\xff\xfe: v",
    b"No-Colon",
    b"Space : before-colon",
    b" Leading: space",
];
const BODIES: &[&[u8]] = &[
    b"",
    b"hello",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"zz\r\nhello\r\n0\r\n\r\n",
    b"ffffffffffffffffffff\r\nx\r\n",
    b"5\r\nhel",
    b"0\r\nTrailer: x\r\n\r\n",
    b"50\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n0\r\n\r\n",
];

/// One request-ish message: mostly well-formed, with a few hostile parts.
fn message(rng: &mut Rng) -> Vec<u8> {
    let mut m = Vec::new();
    if rng.chance(4) {
        let n = 1 + rng.below(200);
        return rng.bytes(n);
    }
    m.extend_from_slice(match rng.below(10) {
        0..=4 => b"GET",
        5..=6 => b"POST",
        _ => rng.pick(METHODS),
    });
    m.push(b' ');
    if rng.chance(3) {
        m.extend(std::iter::repeat_n(b'a', 9000 + rng.below(3000)));
    } else {
        m.extend_from_slice(if rng.chance(50) { b"/" } else { rng.pick(TARGETS) });
    }
    m.push(b' ');
    m.extend_from_slice(if rng.chance(80) { b"HTTP/1.1" } else { rng.pick(VERSIONS) });
    let eol = |rng: &mut Rng| -> &'static [u8] { if rng.chance(3) { b"\n" } else { b"\r\n" } };
    m.extend_from_slice(eol(rng));
    if rng.chance(85) {
        m.extend_from_slice(b"Host: x");
        m.extend_from_slice(eol(rng));
    }
    for _ in 0..rng.below(5) {
        if rng.chance(3) {
            m.extend_from_slice(b"X-Huge: ");
            m.extend(std::iter::repeat_n(b'h', 20_000 + rng.below(60_000)));
        } else if rng.chance(3) {
            let n = 1 + rng.below(40);
            m.extend(rng.bytes(n));
        } else if rng.chance(15) {
            m.extend_from_slice(rng.pick(BAD_HEADERS));
        } else {
            m.extend_from_slice(rng.pick(GOOD_HEADERS));
        }
        m.extend_from_slice(eol(rng));
    }
    if !rng.chance(8) {
        m.extend_from_slice(b"\r\n");
        // A body that does not match the framing headers is read as the next request.
        if rng.chance(40) {
            m.extend_from_slice(rng.pick(BODIES));
        }
    }
    if rng.chance(8) {
        let cut = rng.below(m.len() + 1);
        m.truncate(cut);
    }
    m
}

/// A case: one to three messages back to back (pipelined).
fn case(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..1 + rng.below(3) {
        bytes.extend(message(rng));
    }
    bytes
}

fn show(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(600)]).into_owned();
    format!("{s:?} ({} bytes)", bytes.len())
}

#[tokio::test]
async fn hostile_request_heads_never_crash_or_wedge_the_proxy() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = panics.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let up = Upstream::spawn("blue").await;
    let cfg = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\nheader_timeout = \"2s\"\nidle_timeout = \"2s\"\nmax_header_bytes = 16384\nmax_request_body = 64\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        up.address()
    ));
    let proxy = TestProxy::start(&cfg).await;
    let seed = std::env::var("SWITCHYARD_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe_u64);
    let cases = std::env::var("SWITCHYARD_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let mut rng = Rng(seed | 1);
    for i in 0..cases {
        let bytes = case(&mut rng);
        let mut c = RawConn::open(proxy.addr).await;
        // The proxy may close before reading everything (a refused head); that is fine.
        let _ = c.send(&bytes).await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut c.stream).await;
        let run = async {
            let mut statuses = Vec::new();
            while let Some(r) = c.response().await {
                statuses.push(r.status);
            }
            (statuses, c.closed().await)
        };
        let Ok((statuses, rest)) = tokio::time::timeout(Duration::from_secs(10), run).await else {
            panic!("case {i} (seed {seed}): connection not closed in time; sent {}", show(&bytes));
        };
        assert!(
            rest.is_empty(),
            "case {i} (seed {seed}): not a well-formed response before the close: {} after {statuses:?}; sent {}",
            show(&rest),
            show(&bytes)
        );
        assert!(statuses.iter().all(|s| (100..600).contains(s)), "case {i}: {statuses:?}");
    }
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the proxy panicked");
    let (status, body) = Conn::open(proxy.addr).await.get("x", "/").await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "blue"));
}
