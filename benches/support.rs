//! Tables of N services for the benches and the allocation test.

#![allow(dead_code, clippy::unwrap_used)]

use switchyard_config::Config;
use switchyard_proxy::{AccessLog, Proxy, Router, RoutingTable};

/// A config with `n` services `svc-0.example.com` …, each blue/green 90/10.
pub fn config(n: usize) -> Config {
    let mut text = String::from("[listener]\naddress = \"127.0.0.1:0\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[service]]\nname = \"svc-{i}\"\nhosts = [\"svc-{i}.example.com\"]\n[service.traffic]\nweights = {{ blue = 90, green = 10 }}\n[service.pools.blue]\nbackends = [\"127.0.{net}.1:{}\", \"127.0.{net}.2:{}\"]\n[service.pools.green]\nbackends = [\"127.0.{net}.3:{}\"]\n",
            10000 + i % 50_000,
            10000 + i % 50_000,
            10000 + i % 50_000,
            net = i / 50_000
        ));
    }
    switchyard_config::parse(&text, std::path::Path::new("bench.toml")).unwrap()
}

/// A router over a table of `n` services, and a proxy handler reading it.
pub fn proxy(n: usize) -> (Router, Proxy) {
    let (publisher, router) = switchyard_proxy::channel(RoutingTable::build(&config(n), None, 1));
    std::mem::forget(publisher);
    let proxy = Proxy::new(router.clone(), "127.0.0.1".parse().unwrap(), "http", AccessLog::off());
    (router, proxy)
}

/// A request for the last service of an `n`-service table, with a mixed-case
/// `Host` and a port (the slow path: lower-cased into a stack buffer).
pub fn request(n: usize) -> http::Request<()> {
    http::Request::get("/cart?id=7").header("host", format!("Svc-{}.Example.com:8080", n - 1)).body(()).unwrap()
}

/// The same with the lower-case `Host` browsers send.
pub fn request_lowercase(n: usize) -> http::Request<()> {
    http::Request::get("/cart?id=7").header("host", format!("svc-{}.example.com", n - 1)).body(()).unwrap()
}
