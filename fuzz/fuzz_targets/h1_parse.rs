//! The HTTP/1 path's parsers on arbitrary bytes: never a panic, and every length
//! they report stays inside the input. The differential check against hyper runs
//! in CI as a bounded property test (`crates/proxy/tests/h1_differential.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::h1::chunked::Chunked;
use switchyard_proxy::h1::parse::{self, MAX_HEADERS};

fuzz_target!(|data: &[u8]| {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    if let Ok(Some(head)) = parse::request(data, &mut lines, 64 * 1024) {
        assert!(head.len <= data.len());
        let _ = head.host_rule();
    }
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    if let Ok(Some(head)) = parse::response(data, &mut lines, 64 * 1024, data.first() == Some(&b'H')) {
        assert!(head.len <= data.len());
    }
    // The same bytes as a chunked body, whole and in two pieces.
    let mut whole = Chunked::default();
    if let Ok(fed) = whole.feed(data) {
        assert!(fed.used <= data.len() && fed.data <= fed.used as u64);
        let split = data.len() / 2;
        let mut halves = Chunked::default();
        if let Ok(a) = halves.feed(&data[..split]) {
            let second = if a.done { None } else { halves.feed(&data[split..]).ok() };
            let used = a.used + second.map_or(0, |b| b.used);
            if fed.done {
                assert_eq!(used, fed.used, "where a body ends must not depend on how it was read");
            }
        }
    }
});
