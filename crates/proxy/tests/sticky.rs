//! Sticky canary: keys keep their pool, weight changes move clients one way
//! only, cookies are issued with the right attributes, 100 % wins at once.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use switchyard_config::Config;
use switchyard_proxy::RoutingTable;
use switchyard_test_support::{Conn, TestProxy, Upstream, config_from};

fn cfg(blue: &Upstream, green: &Upstream, green_weight: u32, sticky: &str) -> Config {
    config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\nsticky = {sticky}\n[service.traffic]\nweights = {{ blue = {}, green = {green_weight} }}\n[service.pools.blue]\nbackends = [\"{}\"]\n[service.pools.green]\nbackends = [\"{}\"]\n",
        100 - green_weight,
        blue.address(),
        green.address()
    ))
}

async fn pool_of(c: &mut Conn, key: &str) -> String {
    let req = Request::get("/").header("host", "x").header("x-user-id", key).body(Full::<Bytes>::default()).unwrap();
    c.send(req).await.1
}

async fn assignment(c: &mut Conn, keys: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(keys);
    for k in 0..keys {
        out.push(pool_of(c, &format!("user-{k}")).await);
    }
    out
}

#[tokio::test]
async fn keys_stay_put_and_weight_changes_move_clients_one_way_only() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let sticky = "{ header = \"x-user-id\" }";
    let proxy = TestProxy::start(&cfg(&b, &g, 50, sticky)).await;
    let mut c = Conn::open(proxy.addr).await;
    let at50 = assignment(&mut c, 1000).await;
    for _ in 0..4 {
        assert_eq!(assignment(&mut c, 1000).await, at50, "a key changed pool with unchanged weights");
    }
    let green50 = at50.iter().filter(|p| *p == "green").count();
    assert!((430..=570).contains(&green50), "green share at 50/50: {green50}/1000");

    proxy.apply(&cfg(&b, &g, 80, sticky));
    let at80 = assignment(&mut c, 1000).await;
    for (before, after) in at50.iter().zip(&at80) {
        assert!(!(before == "green" && after == "blue"), "raising green moved a client back to blue");
    }
    let green80 = at80.iter().filter(|p| *p == "green").count();
    assert!((730..=870).contains(&green80), "green share at 80: {green80}/1000");

    proxy.apply(&cfg(&b, &g, 20, sticky));
    let at20 = assignment(&mut c, 1000).await;
    for (before, after) in at50.iter().zip(&at20) {
        assert!(!(before == "blue" && after == "green"), "lowering green moved a client to green");
    }
    let green20 = at20.iter().filter(|p| *p == "green").count();
    assert!((130..=270).contains(&green20), "green share at 20: {green20}/1000");

    // A switch to 100 % wins over stickiness at once.
    proxy.apply(&config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\nsticky = {sticky}\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n[service.pools.green]\nbackends = [\"{}\"]\n",
        b.address(),
        g.address()
    )));
    assert!(assignment(&mut c, 200).await.iter().all(|p| p == "blue"));
}

/// Deterministic pseudo-random sequence for the property test.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test]
async fn property_monotonic_over_random_weight_sequences() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let keys: Vec<u32> =
        (0..500).map(|k| switchyard_proxy::sticky::point("shop", format!("k{k}").as_bytes())).collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..50 {
        let mut prev: Option<(u32, Vec<usize>)> = None;
        for _ in 0..8 {
            let green = u32::try_from(xorshift(&mut rng) % 101).unwrap();
            let table = RoutingTable::build(&cfg(&b, &g, green, "{ header = \"x-user-id\" }"), None, 1);
            let svc = table.service("shop").unwrap();
            let now: Vec<usize> = keys.iter().map(|&p| svc.pool_at(p)).collect();
            if let Some((w, before)) = &prev {
                for (x, y) in before.iter().zip(&now) {
                    // Pool 0 is blue, 1 is green.
                    if green >= *w {
                        assert!(!(*x == 1 && *y == 0), "green {w} -> {green} moved a key green -> blue");
                    } else {
                        assert!(!(*x == 0 && *y == 1), "green {w} -> {green} moved a key blue -> green");
                    }
                }
            }
            prev = Some((green, now));
        }
    }
}

#[tokio::test]
async fn new_clients_get_a_cookie_and_are_routed_by_it_already() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let proxy = TestProxy::start(&cfg(&b, &g, 50, "{ cookie = \"sy_pool\", max_age = \"1d\" }")).await;
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Full<Bytes>>();
    for _ in 0..20 {
        let req = Request::get(format!("http://{}/", proxy.addr)).body(Full::default()).unwrap();
        let resp = client.request(req).await.unwrap();
        let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        let first = String::from_utf8(body.to_vec()).unwrap();
        for attr in ["Max-Age=86400", "Path=/", "HttpOnly", "SameSite=Lax"] {
            assert!(set.contains(attr), "{attr} missing from {set}");
        }
        let key = set.split(';').next().unwrap().strip_prefix("sy_pool=").unwrap().to_owned();
        // The first answer already came from the key's pool…
        let expected = if switchyard_proxy::sticky::point("shop", key.as_bytes()) < 5000 { "blue" } else { "green" };
        assert_eq!(first, expected);
        // …and the cookie keeps it there, without a new cookie.
        for _ in 0..3 {
            let req = Request::get(format!("http://{}/", proxy.addr))
                .header("cookie", format!("other=1; sy_pool={key}"))
                .body(Full::default())
                .unwrap();
            let resp = client.request(req).await.unwrap();
            assert!(resp.headers().get("set-cookie").is_none());
            let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
            assert_eq!(body, expected);
        }
    }
}

#[tokio::test]
async fn override_header_wins_over_stickiness() {
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let text = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\nsticky = {{ header = \"x-user-id\" }}\noverride = {{ header = \"x-switchyard-pool\" }}\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n[service.pools.green]\nbackends = [\"{}\"]\n",
        b.address(),
        g.address()
    );
    let proxy = TestProxy::start(&config_from(&text)).await;
    let mut c = Conn::open(proxy.addr).await;
    let req = Request::get("/")
        .header("host", "x")
        .header("x-user-id", "u1")
        .header("x-switchyard-pool", "green")
        .body(Full::default())
        .unwrap();
    assert_eq!(c.send(req).await.1, "green");
}
