//! Instructions per routing decision, counted by callgrind: a count, not a time,
//! so it is repeatable on a shared machine where criterion's nanoseconds drift.
//!
//! `cargo bench --bench route_ir --no-run`, then for `KIND` = `lower` (the lower-case
//! `Host` browsers send) or `mixed` (mixed case with a port, the slow path):
//! `valgrind --tool=callgrind --callgrind-out-file=/tmp/route.cg target/release/deps/route_ir-HASH KIND`
//! and `callgrind_annotate --inclusive=yes /tmp/route.cg | grep decide`: the
//! inclusive count of `decide` divided by `DECISIONS` is one decision.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use switchyard_proxy::Proxy;

#[path = "support.rs"]
mod support;

/// Decisions per kind of request.
const DECISIONS: usize = 100_000;

#[inline(never)]
fn decide(proxy: &Proxy, req: &http::Request<()>) -> usize {
    (0..DECISIONS).filter(|_| black_box(proxy.route(black_box(req))).is_ok()).count()
}

fn main() {
    let (_router, proxy) = support::proxy(1000);
    // Criterion-style flags (`--bench`) are ignored: this binary only counts.
    let mixed = std::env::args().any(|a| a == "mixed");
    let req = if mixed { support::request(1000) } else { support::request_lowercase(1000) };
    // Warm up the thread-local random source outside the counted function.
    assert!(proxy.route(&req).is_ok());
    assert_eq!(decide(&proxy, &req), DECISIONS);
    println!("{DECISIONS} routing decisions on a 1,000-service table ({})", if mixed { "mixed" } else { "lower" });
}
