//! Cluster mode black-box (SPEC §8), continued: discovered backends and
//! rollouts driven by one replica, with a real etcd and real replicas (see
//! `cluster.rs`).

#![allow(clippy::unwrap_used, unsafe_code)] // test helpers fail loudly by design; kill(2) by pid

mod common;
use common::cluster::*;
use common::http::json;
use common::load::Load;
use common::{App, Sy};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[test]
fn a_discovered_backend_is_served_at_once_and_dropped_when_its_app_dies() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(f) = fleet() else { return };
    let start = |name: &str| {
        replica_with(f.root(), name, &f.etcd, &[("blue", &f.blue)], |t| t + "[service.pools.green]\ndiscover = true\n")
    };
    let (a, b) = (start("a"), start("b"));
    in_step(&a, 2);
    in_step(&b, 2);
    let green_backends = |sy: &Sy| {
        let v = json(sy.admin, "GET", "/v1/services/shop", &[], "").1;
        v["pools"]["green"]["backends"].as_array().unwrap().len()
    };
    assert_eq!(green_backends(&a), 0);
    let (status, body) = switch(&a, "green", "", &[]);
    assert_eq!(status, 409, "a pool with no backend cannot get traffic: {body}");
    let register = |name: &str, ttl: &str| {
        let url = f.etcd.url();
        let args =
            ["--register", &url, "--service", "shop", "--pool", "green", "--prefix", "/sy-test", "--lease-ttl", ttl];
        App::start(name, &args)
    };
    let green1 = register("green-1", "2s");
    let took = eventually("green-1 is discovered", Duration::from_secs(10), || {
        green_backends(&a) == 1 && green_backends(&b) == 1
    });
    println!("a registered backend was in both replicas' tables {took:?} after its app started listening");
    let (status, body) = switch(&a, "green", r#","wait_replicas":"5s""#, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(served(&b), "green-1");
    let green2 = register("green-2", "2s");
    eventually("green-2 is discovered", Duration::from_secs(10), || green_backends(&a) == 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let clients = 4;
    let load = Load::start(a.proxy, clients, Duration::from_millis(2));
    drop(green1); // SIGKILL: its lease expires, the key goes, the replicas drop it
    let gone = eventually("green-1 is dropped", Duration::from_secs(10), || green_backends(&a) == 1);
    println!("a killed app left the table {gone:?} after SIGKILL (its lease: 2s)");
    std::thread::sleep(Duration::from_millis(200));
    let t = rt.block_on(load.stop());
    let (ok, failed) = (t.green_ok.load(Relaxed), t.green_failed.load(Relaxed) + t.blue_failed.load(Relaxed));
    assert!(ok > 100, "{ok}");
    assert!(
        failed <= clients as u64,
        "only requests in flight to the killed app may fail: {failed} of {}",
        ok + failed
    );
    assert_eq!(served(&a), "green-2");
    // Stopped on purpose (SIGTERM), an app revokes its lease: gone at once, not after it.
    let green3 = register("green-3", "30s");
    eventually("green-3 is discovered", Duration::from_secs(10), || green_backends(&a) == 2);
    green3.signal(libc::SIGTERM);
    let left = eventually("green-3 leaves", Duration::from_secs(10), || green_backends(&a) == 1);
    println!("an app stopped with SIGTERM left the table {left:?} after (its lease: 30s)");
    assert!(left < Duration::from_secs(10), "{left:?}");
    drop(green2);
}

/// Short rollout steps for the takeover test.
const ROLLOUT: &str = "[service.rollout]\nsteps = [20, 50, 100]\nstep_interval = \"2s\"\ninterval = \"1s\"\nmax_step_duration = \"20s\"\nfailure_limit = 2\n[service.rollout.analysis]\nmin_requests = 20\nmax_error_rate = 0.05\nmax_error_increase = 0.05\nfast_fail_errors = 0\nmax_latency_ratio = 4.0\n";

#[test]
fn a_rollout_whose_driver_is_killed_is_taken_over_at_its_step_and_promoted() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(f) = fleet() else { return };
    let start =
        |name: &str| replica_with(f.root(), name, &f.etcd, &[("blue", &f.blue), ("green", &f.green)], |t| t + ROLLOUT);
    let (a, b, c) = (start("a"), start("b"), start("c"));
    for sy in [&a, &b, &c] {
        in_step(sy, 3);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let loads: Vec<Load> = [&b, &c].iter().map(|sy| Load::start(sy.proxy, 3, Duration::from_millis(2))).collect();
    let (status, body) = json(
        a.admin,
        "POST",
        "/v1/services/shop/rollout",
        &[],
        r#"{"pool":"green","reason":"r1","wait_replicas":"5s"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let rollout = |sy: &Sy| json(sy.admin, "GET", "/v1/services/shop/rollout", &[], "").1;
    assert_eq!(rollout(&b)["step"], 0);
    a.signal(libc::SIGKILL);
    drop(a);
    // Its lease expires, b or c claims the rollout and drives it on to the end.
    eventually("the rollout is promoted by the replica that took it over", Duration::from_secs(40), || {
        rollout(&b)["phase"] == "promoted"
    });
    let tallies: Vec<_> = loads.into_iter().map(|l| rt.block_on(l.stop())).collect();
    assert!(tallies.iter().all(|t| t.blue_failed.load(Relaxed) + t.green_failed.load(Relaxed) == 0));
    let h = json(c.admin, "GET", "/v1/services/shop/history", &[], "").1;
    let kinds: Vec<&str> = h["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["rollout_step", "rollout_step", "rollout_step"], "started once, never restarted: {h}");
    assert_eq!(served(&c), "green");
}

#[test]
fn with_etcd_down_a_failing_canary_is_rolled_back_at_once_on_its_driver_and_everywhere_when_etcd_is_back() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(mut f) = fleet() else { return };
    let bad = App::start("green", &["--fail-rate", "0.5"]);
    let start =
        |name: &str| replica_with(f.root(), name, &f.etcd, &[("blue", &f.blue), ("green", &bad)], |t| t + ROLLOUT);
    let (a, b) = (start("a"), start("b"));
    in_step(&a, 2);
    in_step(&b, 2);
    let (status, body) =
        json(a.admin, "POST", "/v1/services/shop/rollout", &[], r#"{"pool":"green","wait_replicas":"5s"}"#);
    assert_eq!(status, 201, "{body}");
    f.etcd.stop();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let load = Load::start(a.proxy, 3, Duration::from_millis(2));
    let green_weight = |sy: &Sy| json(sy.admin, "GET", "/v1/services/shop", &[], "").1["traffic"]["green"].clone();
    eventually("the driver rolls back on its own", Duration::from_secs(20), || green_weight(&a) == 0);
    assert_eq!(green_weight(&b), 20, "b cannot know yet: the store is down");
    rt.block_on(load.stop());
    f.etcd.restart();
    eventually("b applies the rollback once the store is back", Duration::from_secs(20), || green_weight(&b) == 0);
    let h = json(b.admin, "GET", "/v1/services/shop/history", &[], "").1;
    assert_eq!(h["events"][0]["kind"], "auto_rollback", "{h}");
    let r = json(b.admin, "GET", "/v1/services/shop/rollout", &[], "").1;
    assert_eq!(r["phase"], "rolled_back", "{r}");
}
