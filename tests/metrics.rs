//! `/metrics` of the real binary: exact request counts per pool, gauges that
//! follow changes, reload errors counted, and a scrape promtool accepts.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;
use common::{Sy, ctl, write_config};
use std::io::Write;
use std::process::{Command, Stdio};
use switchyard_test_support::{Conn, Upstream};

async fn scrape(sy: &Sy) -> String {
    let mut c = Conn::open(sy.admin).await;
    let (status, body) = c.get("localhost", "/metrics").await;
    assert_eq!(status, 200);
    body
}

/// The value of the sample of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (head, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            let metric = head.split('{').next().unwrap_or("");
            metric == name && labels.iter().all(|lab| head.contains(lab))
        })
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_gauges_follow_traffic_and_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let sy = Sy::start(&cfg, &["--access-log", "off"]);
    let mut c = Conn::open(sy.proxy).await;
    for _ in 0..7 {
        assert_eq!(c.get("x", "/").await.1, "blue");
    }
    let m = scrape(&sy).await;
    assert_eq!(sample(&m, "switchyard_pool_weight", &["pool=\"blue\""]), Some(100.0));
    assert_eq!(sample(&m, "switchyard_config_generation", &[]), Some(1.0));
    assert_eq!(
        sample(&m, "switchyard_backend_healthy", &["pool=\"green\"", &format!("backend=\"{}\"", g.address())]),
        Some(1.0)
    );

    let admin = sy.admin_url();
    assert_eq!(tokio::task::block_in_place(|| ctl(&admin, &["switch", "shop", "green"])).0, 0);
    for _ in 0..5 {
        assert_eq!(c.get("x", "/").await.1, "green");
    }
    assert_eq!(c.get("x", "/status/503").await.0, 503);
    let m = scrape(&sy).await;
    let req = |pool: &str, code: &str| {
        sample(
            &m,
            "switchyard_requests_total",
            &["service=\"shop\"", &format!("pool=\"{pool}\""), &format!("code=\"{code}\"")],
        )
    };
    assert_eq!(req("blue", "2xx"), Some(7.0));
    assert_eq!(req("green", "2xx"), Some(5.0));
    assert_eq!(req("green", "5xx"), Some(1.0));
    assert_eq!(sample(&m, "switchyard_request_duration_seconds_count", &["pool=\"green\""]), Some(6.0));
    assert_eq!(sample(&m, "switchyard_pool_weight", &["pool=\"blue\""]), Some(0.0));
    assert_eq!(sample(&m, "switchyard_pool_weight", &["pool=\"green\""]), Some(100.0));
    assert_eq!(sample(&m, "switchyard_traffic_changes_total", &["kind=\"switch\""]), Some(1.0));
    let stamp = sample(&m, "switchyard_last_change_timestamp_seconds", &["service=\"shop\""]).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - stamp).abs() < 60.0, "last change {stamp} vs now {now}");
    assert_eq!(sample(&m, "switchyard_inflight_requests", &["pool=\"blue\""]), Some(0.0));

    std::fs::write(&cfg, "[listener]\naddress = 5\n").unwrap();
    sy.signal(libc::SIGHUP);
    sy.wait_log("reload failed");
    let m = scrape(&sy).await;
    assert_eq!(sample(&m, "switchyard_config_reloads_total", &["result=\"error\""]), Some(1.0));
    assert_eq!(sample(&m, "switchyard_config_generation", &[]), Some(1.0));
    promtool_accepts(&m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_errors_are_counted_under_their_pool() {
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let g = Upstream::spawn("green").await;
    let cfg = write_config(dir.path(), &[dead], &[g.address()], "active = \"blue\"");
    let sy = Sy::start(&cfg, &["--access-log", "off"]);
    let mut c = Conn::open(sy.proxy).await;
    assert_eq!(c.get("x", "/").await.0, 502);
    let m = scrape(&sy).await;
    assert_eq!(sample(&m, "switchyard_requests_total", &["pool=\"blue\"", "code=\"5xx\""]), Some(1.0));
    assert_eq!(sample(&m, "switchyard_upstream_errors_total", &["pool=\"blue\"", "kind=\"connect\""]), Some(1.0));
}

fn promtool_accepts(scrape: &str) {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not installed ({e}); skipping its check outside CI");
            return;
        }
        Err(e) => panic!("promtool is required under CI (.ci/run installs it): {e}"),
    };
    child.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics failed:\n{report}\n---\n{scrape}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_preview_tokens_are_counted_once_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let sy = Sy::start(&cfg, &["--access-log", "off"]);
    let admin = sy.admin_url();
    let (code, token, err) =
        tokio::task::block_in_place(|| ctl(&admin, &["preview-token", "shop", "green", "--ttl", "5m"]));
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_owned();
    let send = |t: String| {
        let proxy = sy.proxy;
        async move {
            let mut c = Conn::open(proxy).await;
            let req = http::Request::get("/")
                .header("host", "x")
                .header("x-switchyard-preview", t)
                .body(http_body_util::Full::<bytes::Bytes>::default())
                .unwrap();
            c.send(req).await
        }
    };
    assert_eq!(send(token.clone()).await.1, "green");
    for _ in 0..3 {
        assert_eq!(send(token.replacen("green", "blue", 1)).await, (http::StatusCode::OK, "blue".into()));
    }
    let m = scrape(&sy).await;
    assert_eq!(sample(&m, "switchyard_preview_tokens_rejected_total", &["service=\"shop\""]), Some(3.0));
    promtool_accepts(&m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_of_removed_pools_and_backends_disappear_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g, b2) = (Upstream::spawn("blue").await, Upstream::spawn("green").await, Upstream::spawn("blue-2").await);
    let cfg = write_config(dir.path(), &[b.address(), b2.address()], &[g.address()], "active = \"green\"");
    let sy = Sy::start(&cfg, &["--access-log", "off"]);
    let mut c = Conn::open(sy.proxy).await;
    assert_eq!(c.get("x", "/").await.1, "green");
    let m = scrape(&sy).await;
    let gone = format!("backend=\"{}\"", b2.address());
    assert!(m.contains(&gone) && m.contains("pool=\"green\""), "{m}");
    // Green goes away (no weight after the file's [traffic] changed), and so does blue-2.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("active = \"green\"", "active = \"blue\"");
    let text = text.replace(&format!(", \"{}\"", b2.address()), "");
    let text = &text[..text.find("[service.pools.green]").unwrap()];
    std::fs::write(&cfg, text).unwrap();
    sy.signal(libc::SIGHUP);
    sy.wait_log("reload applied");
    let m = scrape(&sy).await;
    assert!(!m.contains("pool=\"green\"") && !m.contains(&gone), "{m}");
    assert!(m.contains("pool=\"blue\""), "{m}");
    promtool_accepts(&m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_metrics_are_present_from_start_follow_the_steps_and_count_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let sy = Sy::start(&cfg, &[]);
    let m = scrape(&sy).await;
    assert_eq!(sample(&m, "switchyard_rollout_step", &["service=\"shop\""]), Some(-1.0), "{m}");
    assert_eq!(sample(&m, "switchyard_rollout_canary_weight", &["service=\"shop\""]), Some(0.0));
    let admin = sy.admin_url();
    let start = ["rollout", "start", "shop", "green", "--steps", "10,100", "--set", "interval=1s"];
    assert_eq!(tokio::task::block_in_place(|| ctl(&admin, &start)).0, 0);
    let m = scrape(&sy).await;
    assert_eq!(sample(&m, "switchyard_rollout_step", &["service=\"shop\""]), Some(0.0), "{m}");
    assert_eq!(sample(&m, "switchyard_rollout_canary_weight", &["service=\"shop\""]), Some(10.0));
    // An analysis has run once the next samples are in: its checks have value and limit.
    let mut analysed = String::new();
    for _ in 0..50 {
        analysed = scrape(&sy).await;
        if sample(&analysed, "switchyard_rollout_analysis", &["check=\"error_rate\"", "side=\"limit\""]).is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        sample(&analysed, "switchyard_rollout_analysis", &["check=\"error_rate\"", "side=\"limit\""]),
        Some(0.01),
        "{analysed}"
    );
    assert_eq!(tokio::task::block_in_place(|| ctl(&admin, &["rollout", "abort", "shop"])).0, 0);
    let m = scrape(&sy).await;
    assert_eq!(sample(&m, "switchyard_rollouts_total", &["service=\"shop\"", "result=\"aborted\""]), Some(1.0));
    assert_eq!(sample(&m, "switchyard_rollout_step", &["service=\"shop\""]), Some(-1.0));
    assert_eq!(sample(&m, "switchyard_traffic_changes_total", &["kind=\"rollout_abort\""]), Some(1.0));
    promtool_accepts(&m);
}
