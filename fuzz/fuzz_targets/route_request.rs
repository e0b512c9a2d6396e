//! What a client controls in the routing decision — the Host bytes, the sticky
//! cookie and header, the preview token — against a table with sticky,
//! override and preview configured: never a panic, always a valid pool index.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::LazyLock;
use switchyard_proxy::RoutingTable;
use switchyard_proxy::preview::PreviewKey;

const CONFIG: &str = r#"
[listener]
address = "127.0.0.1:0"
[[service]]
name = "shop"
hosts = ["shop.example.com", "www.example.com"]
sticky = { cookie = "sy_pool" }
[service.traffic]
weights = { blue = 90, green = 10 }
[service.pools.blue]
backends = ["127.0.0.1:1"]
[service.pools.green]
backends = ["127.0.0.1:2"]
[[service]]
name = "any"
[service.traffic]
active = "a"
[service.pools.a]
backends = ["127.0.0.1:3"]
"#;

static TABLE: LazyLock<RoutingTable> = LazyLock::new(|| {
    let config = switchyard_config::parse(CONFIG, Path::new("fz.toml")).expect("valid");
    RoutingTable::build(&config, None, 1)
});
static KEY: LazyLock<PreviewKey> = LazyLock::new(|| PreviewKey::new(vec![7; 32]).expect("key"));

fuzz_target!(|data: &[u8]| {
    let split = data.len() / 2;
    let (host, token) = data.split_at(split);
    if let Some(service) = TABLE.route(host) {
        assert!(!service.pools.is_empty());
        // A forged token is never granted (the key is not the fuzzer's to know).
        assert!(KEY.verify(&service.name, token, 1_800_000_000).is_none());
        let point = switchyard_proxy::sticky::point(&service.name, token);
        assert!(service.pool_at(point) < service.pools.len());
    }
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        headers.insert(http::header::COOKIE, v);
        let _ = switchyard_proxy::sticky::cookie(&headers, "sy_pool");
    }
});
