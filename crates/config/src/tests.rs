//! Every rule of SPEC §2, each with its exact message and location.

use super::*;
use std::path::PathBuf;

const VALID: &str = r#"
[runtime]
worker_threads = 2
shutdown_timeout = "5s"

[listener]
address = "127.0.0.1:8080"
header_timeout = "2s"
max_header_bytes = 16384

[admin]
address = "127.0.0.1:9901"

[state]
file = "state/sy.json"

[[service]]
name = "shop"
hosts = ["Shop.Example.com", "www.shop.example.com"]
sticky = { cookie = "sy_pool", max_age = "1d" }
override = { header = "X-Switchyard-Pool" }
min_healthy = 2

[service.traffic]
weights = { blue = 90, green = 10 }

[service.pools.blue]
backends = ["127.0.0.1:9001", "127.0.0.1:9002"]

[service.pools.green]
backends = ["localhost:9101"]
protocol = "h2c"

[service.health]
path = "/healthz"
interval = "250ms"

[service.timeouts]
connect = "100ms"

[[service]]
name = "api"

[service.traffic]
active = "blue"

[service.pools.blue]
backends = ["[::1]:7000"]
"#;

fn problems(src: &str) -> Vec<String> {
    match parse(src, Path::new("sy.toml")) {
        Ok(_) => panic!("expected problems"),
        Err(e) => e.lines(),
    }
}

/// A minimal valid file with `extra` spliced into the one service.
fn with_service(extra: &str) -> String {
    format!("[listener]\naddress = \"127.0.0.1:8080\"\n\n[[service]]\nname = \"shop\"\n{extra}\n")
}

#[test]
fn full_valid_example_parses() {
    let c = parse(VALID, Path::new("/etc/sy/sy.toml")).unwrap();
    assert_eq!(c.runtime.worker_threads, Some(2));
    assert_eq!(c.listener.max_header_bytes, 16384);
    assert_eq!(c.state.file, PathBuf::from("/etc/sy/state/sy.json"));
    let shop = &c.services[0];
    assert_eq!(shop.hosts, ["shop.example.com", "www.shop.example.com"]);
    assert_eq!(shop.traffic.weight("blue"), Weight(9000));
    assert_eq!(shop.traffic.weight("green"), Weight(1000));
    assert_eq!(shop.pools.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["blue", "green"]);
    assert_eq!(shop.pools[1].protocol, Protocol::H2c);
    assert_eq!(shop.override_header.as_deref(), Some("x-switchyard-pool"));
    assert_eq!(shop.min_healthy, 2);
    assert_eq!(shop.timeouts.connect, std::time::Duration::from_millis(100));
    assert_eq!(shop.timeouts.request, std::time::Duration::from_secs(30));
    assert!(matches!(&shop.sticky, Some(Sticky::Cookie { name, .. }) if name == "sy_pool"));
    let api = &c.services[1];
    assert!(api.is_catch_all());
    assert_eq!(api.traffic.active(), Some("blue"));
}

const BLUE: &str = "[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]";

#[test]
fn unknown_pool_in_active_is_located_at_the_value() {
    let src = with_service(&format!("[service.traffic]\nactive = \"red\"\n{BLUE}"));
    assert_eq!(problems(&src), ["sy.toml:7:10: unknown pool \"red\" (pools: blue)"]);
}

#[test]
fn unknown_keys_are_located_at_the_key_and_reported_with_the_rest() {
    let src = with_service(
        "bogus = 1\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = []\ncolour = \"x\"",
    );
    assert_eq!(
        problems(&src),
        [
            "sy.toml:6:1: unknown key `bogus` in [[service]]",
            "sy.toml:10:12: pool \"blue\" has an empty backend list",
            "sy.toml:11:1: unknown key `colour` in [service.pools.blue]",
        ]
    );
}

#[test]
fn both_or_neither_of_active_and_weights() {
    let both = with_service(&format!("[service.traffic]\nactive = \"blue\"\nweights = {{ blue = 100 }}\n{BLUE}"));
    assert_eq!(problems(&both), ["sy.toml:8:1: [service.traffic] sets both `active` and `weights`; choose one"]);
    let neither = with_service(&format!("[service.traffic]\n{BLUE}"));
    assert_eq!(
        problems(&neither),
        ["sy.toml:6:1: [service.traffic] needs `active = POOL` or `weights = { POOL = N, … }`"]
    );
}

#[test]
fn bad_weights_and_backends_are_all_reported() {
    let src = with_service(&format!(
        "[service.traffic]\nweights = {{ blue = -10, green = 33.333, red = 5 }}\n{BLUE}\n[service.pools.green]\nbackends = [\"nohost\"]"
    ));
    assert_eq!(
        problems(&src),
        [
            "sy.toml:7:20: `blue`: weight -10 is negative",
            "sy.toml:7:33: `green`: weight 33.333 has more than two decimals",
            "sy.toml:7:41: unknown pool \"red\" (pools: blue, green)",
            "sy.toml:11:13: invalid backend address \"nohost\" (expected HOST:PORT)",
        ]
    );
}

#[test]
fn weights_must_add_up_to_exactly_100_and_omitted_pools_get_0() {
    let green = "[service.pools.green]\nbackends = [\"127.0.0.1:2\"]";
    let short = with_service(&format!("[service.traffic]\nweights = {{ blue = 60, green = 30 }}\n{BLUE}\n{green}"));
    assert_eq!(problems(&short), ["sy.toml:7:11: weights add up to 90, not 100"]);
    let ok = with_service(&format!("[service.traffic]\nweights = {{ blue = 66.67, green = 33.33 }}\n{BLUE}\n{green}"));
    assert!(parse(&ok, Path::new("sy.toml")).is_ok());
    let omitted = with_service(&format!("[service.traffic]\nweights = {{ blue = 100 }}\n{BLUE}\n{green}"));
    let c = parse(&omitted, Path::new("sy.toml")).unwrap();
    assert_eq!(c.services[0].traffic.weight("green"), Weight::ZERO);
    assert_eq!(c.services[0].traffic.active(), Some("blue"));
}

#[test]
fn zero_thresholds_and_bad_durations() {
    let src = with_service(&format!(
        "[service.traffic]\nactive = \"blue\"\n{BLUE}\n[service.health]\nhealthy_threshold = 0\ninterval = \"soon\"\n[service.timeouts]\nrequest = 5"
    ));
    assert_eq!(
        problems(&src),
        [
            "sy.toml:11:21: `healthy_threshold` must be at least 1, found 0",
            "sy.toml:12:12: `interval`: invalid duration \"soon\" (expected number at 0; e.g. \"250ms\", \"2s\", \"1m\")",
            "sy.toml:14:11: `request` must be a string, found integer",
        ]
    );
}

#[test]
fn duplicate_names_second_catch_all_and_shared_hosts() {
    let svc = |name: &str, hosts: &str| {
        format!("[[service]]\nname = \"{name}\"\n{hosts}[service.traffic]\nactive = \"blue\"\n{BLUE}\n")
    };
    let src = format!(
        "[listener]\naddress = \"nope\"\n{}{}{}{}",
        svc("a", ""),
        svc("a", "hosts = [\"x.com\"]\n"),
        svc("c", ""),
        svc("d", "hosts = [\"X.com\"]\n"),
    );
    assert_eq!(
        problems(&src),
        [
            "sy.toml:2:11: `address`: invalid address \"nope\" (expected IP:PORT)",
            "sy.toml:10:8: duplicate service name \"a\"",
            "sy.toml:17:8: service \"c\" is a second catch-all (\"a\" already matches every host)",
            "sy.toml:24:10: host \"x.com\" is already claimed by service \"a\"",
        ]
    );
}

#[test]
fn syntax_error_is_reported_alone() {
    let e = parse("[listener\naddress = 1\nbogus = 2", Path::new("sy.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { .. }));
    assert_eq!(e.lines(), ["sy.toml:1:10: unclosed table, expected `]`"]);
}

#[test]
fn unreadable_files_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sy.toml");
    let src = format!(
        "[admin]\ntoken_file = \"missing-token\"\n{}",
        with_service(&format!("[service.traffic]\nactive = \"blue\"\n{BLUE}"))
    );
    let e = parse(&src, &path).unwrap_err().lines();
    let want =
        format!("{}:2:14: `token_file`: cannot read {}: ", path.display(), dir.path().join("missing-token").display());
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with(&want), "{e:?}");
    let missing = load(&dir.path().join("nope.toml")).unwrap_err().lines();
    assert_eq!(missing.len(), 1);
    assert!(missing[0].starts_with(&format!("{}: ", dir.path().join("nope.toml").display())), "{missing:?}");
}

#[test]
fn empty_file_needs_listener_and_service() {
    assert_eq!(problems(""), ["sy.toml:1:1: missing table [listener]", "sy.toml:1:1: no [[service]] defined"]);
}

#[test]
fn small_header_limit_and_bad_hosts_and_sticky() {
    let src = format!(
        "[listener]\naddress = \"127.0.0.1:1\"\nmax_header_bytes = 100\n[[service]]\nname = \"s\"\nhosts = [\"a b\"]\nsticky = {{ cookie = \"x\", header = \"y\" }}\n[service.traffic]\nactive = \"blue\"\n{BLUE}\n"
    );
    assert_eq!(
        problems(&src),
        [
            "sy.toml:3:20: `max_header_bytes` must be at least 8192, found 100",
            "sy.toml:6:10: invalid host \"a b\" (a DNS name without port or scheme)",
            "sy.toml:7:10: `sticky` needs exactly one of `cookie = NAME` or `header = NAME`",
        ]
    );
}

#[test]
fn zero_timeouts_are_refused_where_they_make_no_sense() {
    let src = format!(
        "[listener]\naddress = \"127.0.0.1:8080\"\nheader_timeout = \"0s\"\nidle_timeout = \"0ms\"\n\n[[service]]\nname = \"shop\"\n{}",
        "[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]\n[service.timeouts]\nidle = \"0s\"\nconnect = \"0s\""
    );
    let lines = problems(&src);
    assert_eq!(
        lines,
        [
            "sy.toml:3:18: `header_timeout` must be longer than 0",
            "sy.toml:4:16: `idle_timeout` must be longer than 0",
            "sy.toml:13:8: `idle` must be longer than 0",
            "sy.toml:14:11: `connect` must be longer than 0",
        ]
    );
}

#[test]
fn limits_sizes_admin_hosts_and_probe_host() {
    let src = "[listener]\naddress = \"127.0.0.1:8080\"\nmax_connections = 1000\nmax_upstream_connections = 8\nmax_request_body = \"10MiB\"\n\n[admin]\nhosts = [\"Proxy-1.internal\"]\n\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]\n[service.health]\nhost = \"shop.example.com\"\n[service.timeouts]\nidle = \"5s\"\n";
    let c = parse(src, Path::new("sy.toml")).unwrap();
    assert_eq!(c.listener.max_connections, 1000);
    assert_eq!(c.listener.max_upstream_connections, 8);
    assert_eq!(c.listener.max_request_body, 10 << 20);
    assert_eq!(c.admin.hosts, ["proxy-1.internal"]);
    assert_eq!(c.services[0].health.as_ref().unwrap().host.as_deref(), Some("shop.example.com"));
    assert_eq!(c.services[0].timeouts.idle, std::time::Duration::from_secs(5));
    let bad = "[listener]\naddress = \"127.0.0.1:8080\"\nmax_connections = 0\nmax_request_body = \"10MB\"\n\n[admin]\nhosts = [\"http://x\"]\n\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]\n";
    let lines = problems(bad);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("sy.toml:3:19: `max_connections` must be at least 1"), "{lines:?}");
    assert!(lines[1].starts_with("sy.toml:4:20: `max_request_body`: invalid size \"10MB\""), "{lines:?}");
    assert!(lines[2].starts_with("sy.toml:7:10: invalid host \"http://x\""), "{lines:?}");
    assert_eq!(parse_size("512"), Ok(512));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert!(parse_size("99999999999999GiB").is_err());
}

#[test]
fn empty_token_files_and_short_preview_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), " \n").unwrap();
    std::fs::write(dir.path().join("key"), "short").unwrap();
    let src = format!(
        "[admin]\ntoken_file = \"token\"\npreview_key_file = \"key\"\n{}",
        with_service(&format!("[service.traffic]\nactive = \"blue\"\n{BLUE}"))
    );
    let e = parse(&src, &dir.path().join("sy.toml")).unwrap_err().lines();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].contains(":2:14: `token_file`:") && e[0].ends_with("holds fewer than 1 bytes"), "{e:?}");
    assert!(e[1].contains(":3:20: `preview_key_file`:") && e[1].ends_with("holds fewer than 16 bytes"), "{e:?}");
}

#[test]
fn a_host_named_twice_in_one_service_is_one_host() {
    let src = with_service(&format!(
        "hosts = [\"Shop.example\", \"shop.example\", \"b.example\"]\n[service.traffic]\nactive = \"blue\"\n{BLUE}"
    ));
    let c = parse(&src, Path::new("t.toml")).unwrap();
    assert_eq!(c.services[0].hosts, ["shop.example", "b.example"]);
}

/// A minimal valid file with a `[cluster]` table of `body`.
fn with_cluster(body: &str) -> String {
    format!("{}\n[cluster]\n{body}\n", with_service(&format!("{BLUE}\n[service.traffic]\nactive = \"blue\"")))
}

#[test]
fn cluster_defaults_and_settings() {
    let c = parse(&with_cluster("etcd = [\"http://127.0.0.1:2379\"]"), Path::new("sy.toml")).unwrap();
    let cl = c.cluster.unwrap();
    assert_eq!((cl.prefix.as_str(), cl.name, cl.lease_ttl), ("/switchyard", None, std::time::Duration::from_secs(10)));
    let src = "etcd = [\"http://etcd-1.internal:2379/\", \"http://[::1]:2379\"]\nprefix = \"/sy/prod/\"\nname = \"proxy-a\"\nlease_ttl = \"3s\"";
    let cl = parse(&with_cluster(src), Path::new("sy.toml")).unwrap().cluster.unwrap();
    assert_eq!((cl.prefix.as_str(), cl.name.as_deref(), cl.lease_ttl.as_secs()), ("/sy/prod", Some("proxy-a"), 3));
}

#[test]
fn unparsable_cluster_settings_are_located() {
    let src = "etcd = [\"http://127.0.0.1:2379\", \"127.0.0.1:2379\", \"https://e:2379\", \"http://e:port\"]\nprefix = \"sy\"\nname = \"a b\"\nlease_ttl = \"1s\"";
    let p = problems(&with_cluster(src));
    let line = |s: &str| p.iter().find(|l| l.contains(s)).unwrap_or_else(|| panic!("no {s:?} in {p:?}")).clone();
    assert!(line("\"127.0.0.1:2379\": must look like http://HOST:PORT").starts_with("sy.toml:12:34:"), "{p:?}");
    assert!(line("https is not supported").starts_with("sy.toml:12:52:"), "{p:?}");
    assert!(line("\"port\" is not a port").starts_with("sy.toml:12:"), "{p:?}");
    assert!(line("`prefix` must start with").starts_with("sy.toml:13:10:"), "{p:?}");
    assert!(line("may only use letters").starts_with("sy.toml:14:8:"), "{p:?}");
    assert!(line("`lease_ttl` must be at least 2s").starts_with("sy.toml:15:"), "{p:?}");
    assert_eq!(p.len(), 6, "{p:?}");
}

#[test]
fn discover_needs_a_cluster_and_then_may_have_no_backends() {
    let pools = "[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]\n[service.pools.green]\ndiscover = true";
    let p = problems(&with_service(pools));
    assert_eq!(p, ["sy.toml:11:12: `discover = true` needs a [cluster] section: backends are discovered through etcd"]);
    let c = parse(
        &format!("{}\n[cluster]\netcd = [\"http://127.0.0.1:2379\"]\n", with_service(pools)),
        Path::new("sy.toml"),
    )
    .unwrap();
    let green = &c.services[0].pools[1];
    assert!(green.discover && green.backends.is_empty());
    let p = problems(&with_service("[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\ndiscover = \"yes\""));
    assert!(p.iter().any(|l| l.contains("`discover` must be true or false")), "{p:?}");
}
