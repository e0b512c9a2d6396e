//! The routing decision (Host match + pool draw + backend pick) on tables of 1, 10,
//! 1,000 and 50,000 services, and the snapshot load alone. `cargo bench --bench routing`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

#[path = "support.rs"]
mod support;

fn routing(c: &mut Criterion) {
    for (name, make) in [
        ("route_mixed_case_host", support::request as fn(usize) -> http::Request<()>),
        ("route", support::request_lowercase as fn(usize) -> http::Request<()>),
    ] {
        let mut group = c.benchmark_group(name);
        for n in [1, 10, 1000, 50_000] {
            let (_router, proxy) = support::proxy(n);
            let req = make(n);
            group.bench_with_input(BenchmarkId::from_parameter(n), &req, |b, req| {
                b.iter(|| black_box(proxy.route(black_box(req)).is_ok()));
            });
        }
        group.finish();
    }
    let (router, _) = support::proxy(10);
    c.bench_function("snapshot_load", |b| b.iter(|| black_box(router.load().generation())));
}

criterion_group!(benches, routing);
criterion_main!(benches);
