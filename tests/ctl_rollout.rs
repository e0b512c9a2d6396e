//! `ctl rollout …` and `ctl status` against a real `switchyard serve`: usage
//! errors exit 2, refusals 1 with the server's error, an unreachable API 3; the
//! status table has the per-pool figures. (Rollouts that run end to end need the
//! server's rollout routes; those tests live with them.)

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;
use common::{Sy, ctl, write_config};
use switchyard_test_support::Upstream;

async fn serve() -> (Sy, Upstream, Upstream, tempfile::TempDir) {
    let (blue, green) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[blue.address()], &[green.address()], "active = \"blue\"");
    (tokio::task::block_in_place(|| Sy::start(&config, &[])), blue, green, dir)
}

/// An admin URL where nothing listens: a port that was just free.
fn dead_admin() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn malformed_rollout_flags_are_usage_errors_before_any_call() {
    // No server at all: a usage error is found first, and exits 2, not 3.
    let admin = dead_admin();
    for bad in [
        &["rollout", "start", "shop", "green", "--steps", "5,x,100"][..],
        &["rollout", "start", "shop", "green", "--step-interval", "a while"],
        &["rollout", "start", "shop", "green", "--set", "max_error_rate"],
        &["rollout", "start", "shop", "green", "--set", "pool=blue"],
        &["rollout", "start", "shop", "green", "--set", "analysis=1", "--set", "analysis.min_requests=5"],
        &["rollout", "start", "shop"],
        &["rollout", "pause"],
        &["rollout", "rewind", "shop"],
    ] {
        let (code, _, err) = ctl(&admin, bad);
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
}

#[test]
fn an_unreachable_admin_api_exits_3() {
    let admin = dead_admin();
    for args in [&["rollout", "status", "shop"][..], &["rollout", "start", "shop", "green"], &["status"]] {
        let (code, _, err) = ctl(&admin, args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(err.contains("cannot reach the admin API"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_rollout_status_and_control_calls_are_refused_with_the_servers_error() {
    let (sy, _blue, _green, _dir) = serve().await;
    let admin = sy.admin_url();
    for args in [
        &["rollout", "status", "shop"][..],
        &["rollout", "status", "shop", "--watch"],
        &["rollout", "pause", "shop", "--reason", "lunch"],
        &["rollout", "abort", "shop"],
        &["rollout", "status", "nosuch"],
    ] {
        let (code, out, err) = tokio::task::block_in_place(|| ctl(&admin, args));
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.starts_with("error (4"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tables_every_pool_with_weight_health_and_live_figures() {
    let (sy, _blue, _green, _dir) = serve().await;
    let admin = sy.admin_url();
    for args in [&["status"][..], &["status", "shop"]] {
        let (code, out, err) = tokio::task::block_in_place(|| ctl(&admin, args));
        assert_eq!(code, 0, "{err}");
        let header = out.lines().find(|l| l.contains("POOL")).unwrap_or_else(|| panic!("{out}"));
        let cols: Vec<&str> = header.split_whitespace().collect();
        assert_eq!(cols, ["SERVICE", "POOL", "WEIGHT", "HEALTHY", "IN", "FLIGHT", "REQ/S", "ERRORS", "P99"]);
        let rows: Vec<Vec<&str>> = out
            .lines()
            .filter(|l| l.starts_with("shop ") && l.split_whitespace().count() == 8)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows.len(), 2, "{out}");
        assert_eq!(rows[0][..5], ["shop", "blue", "100", "1/1", "0"], "{out}");
        assert_eq!(rows[1][..5], ["shop", "green", "0", "1/1", "0"], "{out}");
    }
}
