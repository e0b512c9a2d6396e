//! Progressive rollouts black-box (SPEC §9): the real binary in front of real
//! `switchyard app` fleets, live load from the test, and `ctl rollout … --wait`
//! as a CI deploy step would run it.

#![allow(clippy::unwrap_used, unsafe_code)] // test helpers fail loudly by design; kill(2) by pid

mod common;
use common::load::Load;
use common::{App, Sy, ctl};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use switchyard_test_support::Conn;

/// The service's rollout settings for a test: short steps, a small sample gate.
const ROLLOUT: &str = "[service.rollout]\nsteps = [20, 50, 100]\nstep_interval = \"2s\"\ninterval = \"1s\"\nmax_step_duration = \"4s\"\nfailure_limit = 2\n[service.rollout.analysis]\nmin_requests = 40\nmax_error_rate = 0.02\nmax_error_increase = 0.01\nfast_fail_errors = 0\nmax_latency_ratio = 2.0\n";

fn write_config(dir: &Path, blue: &App, green: &App) -> std::path::PathBuf {
    let text = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"state/sy.json\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n[service.pools.green]\nbackends = [\"{}\"]\n{ROLLOUT}",
        blue.addr, green.addr
    );
    let path = dir.join("sy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn ctl_in(sy: &Sy, args: &[&str]) -> (i32, String, String) {
    tokio::task::block_in_place(|| ctl(&sy.admin_url(), args))
}

fn history(sy: &Sy) -> Vec<serde_json::Value> {
    let (code, out, err) = ctl_in(sy, &["--json", "history", "shop"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["events"].as_array().unwrap().clone()
}

fn rollout(sy: &Sy) -> serde_json::Value {
    let (code, out, err) = ctl_in(sy, &["--json", "rollout", "status", "shop"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_green_is_promoted_through_every_step_and_wait_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (blue, green) = (App::start("blue", &[]), App::start("green", &[]));
    let sy = Sy::start(&write_config(dir.path(), &blue, &green), &[]);
    let load = Load::start(sy.proxy, 4, std::time::Duration::from_millis(5));
    let (code, out, err) = ctl_in(&sy, &["rollout", "start", "shop", "green", "--reason", "deploy 42", "--wait"]);
    let tally = load.stop().await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(rollout(&sy)["phase"], "promoted");
    let steps: Vec<_> = history(&sy).into_iter().filter(|e| e["kind"] == "rollout_step").collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps[0]["to"]["green"] == 100 && steps[2]["to"]["green"] == 20, "{steps:?}");
    assert!(steps[..2].iter().all(|e| e["reason"].as_str().unwrap().contains("canary n=")), "{steps:?}");
    assert_eq!(tally.blue_failed.load(Relaxed) + tally.green_failed.load(Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_failing_a_fifth_of_requests_rolls_back_with_no_blue_request_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (blue, green) = (App::start("blue", &[]), App::start("green", &["--fail-rate", "0.2"]));
    let sy = Sy::start(&write_config(dir.path(), &blue, &green), &[]);
    let load = Load::start(sy.proxy, 4, std::time::Duration::from_millis(5));
    let (code, out, err) = ctl_in(&sy, &["rollout", "start", "shop", "green", "--wait"]);
    let tally = load.stop().await;
    assert_eq!(code, 1, "{out}\n{err}");
    let r = rollout(&sy);
    assert_eq!(r["phase"], "rolled_back", "{r}");
    let last = &history(&sy)[0];
    assert_eq!((last["kind"].as_str(), last["to"]["blue"].as_u64()), (Some("auto_rollback"), Some(100)), "{last}");
    assert!(last["reason"].as_str().unwrap().contains("error rate"), "{last}");
    assert_eq!(tally.blue_failed.load(Relaxed), 0, "no request failed on blue");
    assert!(tally.green_failed.load(Relaxed) > 0);
    // From the first failing analysis to the rollback: at most failure_limit × interval + interval.
    let (first_fail, rolled_back) =
        (r["analysis"]["consecutive_failures"].as_u64().unwrap(), r["settings"]["failure_limit"].as_u64().unwrap());
    assert_eq!(first_fail, rolled_back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_eight_times_slower_than_blue_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    // 8× rather than 3×: on a loaded 2-core machine queueing adds the same few
    // milliseconds to both pools' p99, which squeezed a 3× ratio to the 2× limit.
    let (blue, green) = (App::start("blue", &["--latency", "5ms"]), App::start("green", &["--latency", "40ms"]));
    let sy = Sy::start(&write_config(dir.path(), &blue, &green), &[]);
    let load = Load::start(sy.proxy, 8, std::time::Duration::from_millis(1));
    let (code, out, err) = ctl_in(&sy, &["rollout", "start", "shop", "green", "--wait"]);
    load.stop().await;
    assert_eq!(code, 1, "{out}\n{err}");
    let r = rollout(&sy);
    assert_eq!(r["phase"], "rolled_back", "{r}");
    let checks = r["analysis"]["checks"].as_array().unwrap();
    let ratio = checks.iter().find(|c| c["name"] == "latency_ratio").unwrap();
    assert_eq!(ratio["result"], "fail", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_without_traffic_is_never_promoted_and_ends_paused() {
    let dir = tempfile::tempdir().unwrap();
    let (blue, green) = (App::start("blue", &[]), App::start("green", &[]));
    let sy = Sy::start(&write_config(dir.path(), &blue, &green), &[]);
    let (code, out, err) = ctl_in(&sy, &["rollout", "start", "shop", "green", "--wait"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let r = rollout(&sy);
    assert_eq!((r["phase"].as_str(), r["step"].as_u64()), (Some("paused"), Some(0)), "{r}");
    assert!(r["message"].as_str().unwrap().contains("insufficient data"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_a_rollout_then_start_again_continues_on_the_same_step() {
    let dir = tempfile::tempdir().unwrap();
    let (blue, green) = (App::start("blue", &[]), App::start("green", &[]));
    let cfg = write_config(dir.path(), &blue, &green);
    let mut sy = Sy::start(&cfg, &[]);
    let (code, _, err) = ctl_in(
        &sy,
        &["rollout", "start", "shop", "green", "--set", "step_interval=1h", "--set", "max_step_duration=2h"],
    );
    assert_eq!(code, 0, "{err}");
    sy.signal(libc::SIGKILL);
    tokio::task::block_in_place(|| sy.wait_exit());
    let sy = Sy::start(&cfg, &[]);
    let r = rollout(&sy);
    assert_eq!(
        (r["phase"].as_str(), r["step"].as_u64(), r["weight"].as_u64()),
        (Some("progressing"), Some(0), Some(20))
    );
    assert_eq!(Conn::open(sy.proxy).await.get("shop", "/").await.0, 200);
    let (code, _, err) = ctl_in(&sy, &["rollout", "promote", "shop", "--reason", "looks fine"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rollout(&sy)["phase"], "promoted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_switch_cancels_the_rollout_and_bad_starts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (blue, green) = (App::start("blue", &[]), App::start("green", &[]));
    let sy = Sy::start(&write_config(dir.path(), &blue, &green), &[]);
    let refused = |args: &[&str], needle: &str| {
        let (code, out, err) = ctl_in(&sy, args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    refused(&["rollout", "start", "shop", "green", "--steps", "50,20,100"], "ascending");
    refused(&["rollout", "start", "shop", "green", "--set", "analysis.max_error_rate=2"], "analysis.max_error_rate");
    refused(&["rollout", "start", "shop", "purple"], "no pool");
    refused(&["rollout", "pause", "shop"], "no rollout");
    assert_eq!(
        ctl_in(
            &sy,
            &["rollout", "start", "shop", "green", "--set", "step_interval=1h", "--set", "max_step_duration=2h"]
        )
        .0,
        0
    );
    refused(&["rollout", "start", "shop", "green"], "already has rollout");
    assert_eq!(ctl_in(&sy, &["switch", "shop", "blue", "--reason", "not today"]).0, 0);
    assert_eq!(rollout(&sy)["phase"], "cancelled");
    let last = &history(&sy)[0];
    assert!(last["reason"].as_str().unwrap().contains("cancelled rollout"), "{last}");
}
