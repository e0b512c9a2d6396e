//! A full in-process round trip: client → proxy → upstream on loopback, one
//! kept-alive connection. `cargo bench --bench round_trip`.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_test_support::{Conn, TestProxy, Upstream, config_from};

fn round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_up, proxy, mut conn) = rt.block_on(async {
        let up = Upstream::spawn("blue").await;
        let cfg = config_from(&format!(
            "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"s\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
            up.address()
        ));
        let proxy = TestProxy::start(&cfg).await;
        let conn = Conn::open(proxy.addr).await;
        (up, proxy, conn)
    });
    c.bench_function("round_trip_keepalive", |b| {
        b.iter(|| rt.block_on(async { assert_eq!(conn.get("x", "/").await.0, 200) }));
    });
    drop(proxy);
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
