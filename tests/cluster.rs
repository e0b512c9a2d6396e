//! Cluster mode black-box (SPEC §8): a real etcd (Debian's etcd-server 3.4)
//! started by the test on loopback ports with a temporary data dir, several real
//! `switchyard serve` replicas sharing it, real `switchyard app` fleets. Here:
//! writes, applying, replicas, the store going away, bad values. Discovery and
//! rollouts are in `cluster_follow.rs`.

#![allow(clippy::unwrap_used, unsafe_code)] // test helpers fail loudly by design; kill(2) by pid

mod common;
use common::cluster::*;
use common::http::json;
use common::load::Load;
use common::{App, Sy, ctl};
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[test]
fn a_switch_on_one_replica_is_served_by_all_and_wait_replicas_answers_once_all_applied() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(f) = fleet() else { return };
    let r = f.replicas(&["a", "b", "c"]);
    assert!(r.iter().all(|sy| served(sy) == "blue"));
    // A preview token from one replica opens the pool on every replica: one shared key.
    let (status, t) = json(r[0].admin, "POST", "/v1/services/shop/preview-token", &[], r#"{"pool":"green"}"#);
    assert_eq!(status, 200, "{t}");
    let token = t["token"].as_str().unwrap();
    for sy in &r {
        let (_, body) = common::http::request(sy.proxy, "GET", "/", &[("x-switchyard-preview", token)], "").unwrap();
        assert_eq!(body.trim(), "green", "{}", sy.admin);
    }
    let (status, body) = switch(&r[0], "green", r#","reason":"release 42","wait_replicas":"5s""#, &[]);
    assert_eq!(status, 200, "{body}");
    // wait_replicas answered: every replica applied it, so each serves green now.
    for sy in &r {
        assert_eq!(served(sy), "green", "{}", sy.admin);
    }
    let h = json(r[2].admin, "GET", "/v1/services/shop/history", &[], "").1;
    assert_eq!(h["events"][0]["reason"], "release 42", "{h}");
    assert_eq!(h["events"][0]["kind"], "switch");
    let c = cluster(&r[1]);
    for rep in c["replicas"].as_array().unwrap() {
        assert_eq!(rep["applied"]["shop"], body["version"], "{c}");
    }
    // The time from a switch's call to the last replica applying it.
    let mut took = vec![];
    for i in 0..100 {
        let pool = if i % 2 == 0 { "blue" } else { "green" };
        let from = &r[i % 3];
        let start = Instant::now();
        let (status, body) = switch(from, pool, r#","wait_replicas":"5s""#, &[]);
        took.push(start.elapsed());
        assert_eq!(status, 200, "{body}");
    }
    for sy in &r {
        assert_eq!(served(sy), "green");
    }
    took.sort();
    println!("switch → applied on all 3 replicas, 100 switches: median {:?}, max {:?}", took[50], took[99]);
    let (code, out, err) = ctl(&r[0].admin_url(), &["cluster"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("store: etcd, connected") && out.lines().count() == 5, "{out}");
}

#[test]
fn same_if_match_on_two_replicas_one_wins_and_concurrent_changes_lose_no_version() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(f) = fleet() else { return };
    let r = f.replicas(&["a", "b"]);
    let admins: Vec<std::net::SocketAddr> = r.iter().map(|sy| sy.admin).collect();
    let version = json(r[0].admin, "GET", "/v1/services/shop", &[], "").1["version"].as_u64().unwrap();
    let tag = format!("\"{version}\"");
    let barrier = Arc::new(Barrier::new(2));
    let answers: Vec<u16> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..2)
            .map(|i| {
                let (admins, barrier, tag) = (&admins, barrier.clone(), tag.clone());
                s.spawn(move || {
                    barrier.wait();
                    let body = format!(r#"{{"weights":{{"blue":{},"green":{}}}}}"#, 50 + i * 10, 50 - i * 10);
                    json(admins[i], "POST", "/v1/services/shop/weights", &[("If-Match", tag.as_str())], &body).0
                })
            })
            .collect();
        racers.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut sorted = answers.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 412], "{answers:?}");
    // Two operators hammering two replicas without If-Match: every change lands.
    let before = versions(&r[0]).len();
    std::thread::scope(|s| {
        for i in 0..2 {
            let admins = &admins;
            s.spawn(move || {
                for k in 0..20 {
                    let w = 1 + k + i * 20;
                    let body = format!(r#"{{"weights":{{"blue":{},"green":{w}}}}}"#, 100 - w);
                    let (status, answer) = json(admins[i], "POST", "/v1/services/shop/weights", &[], &body);
                    assert_eq!(status, 200, "{answer}");
                }
            });
        }
    });
    let (status, last) = switch(&r[0], "blue", r#","wait_replicas":"5s""#, &[]);
    assert_eq!(status, 200, "{last}");
    for sy in &r {
        let v = versions(sy);
        assert_eq!(v.len(), before + 41, "every change has its event on {}", sy.admin);
        assert!(v.windows(2).all(|w| w[0] == w[1] + 1), "no version lost or repeated: {v:?}");
        assert_eq!(v[0], last["version"].as_u64().unwrap());
    }
}

#[test]
fn a_killed_replica_leaves_within_its_lease_and_rejoins_after_compaction_with_the_current_state() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(f) = fleet() else { return };
    let mut r = f.replicas(&["a", "b", "c"]);
    let c = r.pop().unwrap();
    c.signal(libc::SIGKILL);
    let left = eventually("c leaves /v1/cluster", Duration::from_secs(10), || {
        cluster(&r[0])["replicas"].as_array().is_some_and(|x| x.len() == 2)
    });
    println!("a replica killed with SIGKILL left /v1/cluster after {left:?} (lease_ttl {LEASE})");
    assert!(left < Duration::from_secs(6), "{left:?}");
    drop(c);
    // c is gone: a wait does not wait for it.
    let (status, body) = switch(&r[0], "green", r#","wait_replicas":"5s""#, &[]);
    assert_eq!(status, 200, "{body}");
    // History c never saw is compacted away; it restarts from its old state file.
    f.etcd.compact(f.etcd.revision());
    let c = replica(f.root(), "c", &f.etcd, &[("blue", &f.blue), ("green", &f.green)]);
    in_step(&c, 3);
    in_step(&r[0], 3);
    assert_eq!(served(&c), "green");
    assert_eq!(json(c.admin, "GET", "/v1/services/shop", &[], "").1["version"], body["version"]);
}

#[test]
fn with_etcd_down_no_request_fails_changes_get_503_and_replicas_converge_when_it_is_back() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(mut f) = fleet() else { return };
    let r = f.replicas(&["a", "b"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let loads: Vec<Load> = r.iter().map(|sy| Load::start(sy.proxy, 4, Duration::from_millis(2))).collect();
    f.etcd.stop();
    let health = |sy: &Sy| common::http::request(sy.admin, "GET", "/healthz", &[], "").unwrap();
    for sy in &r {
        eventually("healthz says the store is unreachable", Duration::from_secs(10), || {
            health(sy).1.contains("cluster: store unreachable since")
        });
        assert_eq!(health(sy).0, 200);
    }
    let (status, body) = switch(&r[0], "green", "", &[]);
    assert_eq!(status, 503, "{body}");
    let metrics = common::http::request(r[1].admin, "GET", "/metrics", &[], "").unwrap().1;
    assert!(metrics.contains("switchyard_cluster_connected 0"), "{metrics}");
    assert!(served(&r[1]) == "blue");
    f.etcd.restart();
    for sy in &r {
        eventually("the store is back", Duration::from_secs(15), || health(sy).1 == "ok\n");
    }
    let (status, body) = switch(&r[1], "green", r#","wait_replicas":"5s""#, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(served(&r[0]), "green");
    let tallies: Vec<_> = loads.into_iter().map(|l| rt.block_on(l.stop())).collect();
    for t in tallies {
        let (ok, failed) = (
            t.blue_ok.load(Relaxed) + t.green_ok.load(Relaxed),
            t.blue_failed.load(Relaxed) + t.green_failed.load(Relaxed),
        );
        assert!(ok > 100, "{ok}");
        assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    }
}

#[test]
fn a_replica_without_the_pool_rejects_the_version_keeps_serving_and_the_wait_says_202() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(f) = fleet() else { return };
    let canary = App::start("canary", &[]);
    let three = [("blue", &f.blue), ("green", &f.green), ("canary", &canary)];
    let a = replica(f.root(), "a", &f.etcd, &three);
    let c = replica(f.root(), "c", &f.etcd, &[("blue", &f.blue), ("green", &f.green)]);
    in_step(&a, 2);
    in_step(&c, 2);
    let (status, body) = switch(&a, "canary", r#","wait_replicas":"3s""#, &[]);
    assert_eq!(status, 202, "{body}");
    assert_eq!((body["committed"].clone(), body["complete"].clone()), (Value::Bool(true), Value::Bool(false)));
    assert_eq!(body["rejected"], serde_json::json!(["c"]), "{body}");
    assert_eq!(body["pending"], serde_json::json!([]), "{body}");
    assert_eq!(served(&a), "canary");
    assert_eq!(served(&c), "blue", "the rejecting replica keeps its previous state");
    let rejected = &cluster(&a)["replicas"][1]["rejected"]["shop"];
    assert!(rejected["error"].as_str().unwrap().contains("\"canary\""), "{rejected}");
    // A change on the rejecting replica would start from its stale state: refused, not overwritten.
    let (status, refusal) = switch(&c, "green", "", &[]);
    assert_eq!(status, 409, "{refusal}");
    assert_eq!(json(a.admin, "GET", "/v1/services/shop", &[], "").1["version"], body["version"]);
    assert_eq!(served(&a), "canary");
    // ctl with --wait-replicas exits 1 and says who rejected it.
    let (code, _, err) = ctl(&a.admin_url(), &["weights", "shop", "canary=50", "blue=50", "--wait-replicas", "2s"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rejected: c"), "{err}");
}

#[test]
fn garbage_under_the_prefix_is_counted_and_ignored_and_the_next_change_replaces_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(f) = fleet() else { return };
    let r = f.replicas(&["a", "b"]);
    f.etcd.put("/sy-test/services/shop", b"{not json");
    f.etcd.put("/sy-test/history/shop/00000000000000000099", b"[1,2");
    let counted = |sy: &Sy| {
        let m = common::http::request(sy.admin, "GET", "/metrics", &[], "").unwrap().1;
        m.lines().any(|l| l.starts_with("switchyard_cluster_errors_total{kind=\"unreadable_value\"}"))
    };
    for sy in &r {
        eventually("the unreadable value is counted", Duration::from_secs(10), || counted(sy));
        assert_eq!(served(sy), "blue", "the previous state stands");
    }
    let (status, body) = switch(&r[0], "green", r#","wait_replicas":"5s""#, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(served(&r[1]), "green");
    // Someone deletes the service key: the next change writes it again.
    f.etcd.delete("/sy-test/services/shop");
    let (status, body) = switch(&r[1], "blue", r#","wait_replicas":"5s""#, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(served(&r[0]), "blue");
}

#[test]
fn a_replica_whose_watch_falls_behind_a_compaction_reads_everything_again_and_converges() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(f) = fleet() else { return };
    // A long lease: the stopped replica must stay a member and keep its watch.
    let long_lease = |t: String| t.replace("lease_ttl = \"2s\"", "lease_ttl = \"60s\"");
    let start =
        |name: &str| replica_with(f.root(), name, &f.etcd, &[("blue", &f.blue), ("green", &f.green)], long_lease);
    let (a, c) = (start("a"), start("c"));
    in_step(&a, 2);
    in_step(&c, 2);
    // c stops reading: its watch stream fills, etcd gives up sending to it…
    c.signal(libc::SIGSTOP);
    // Far more than the stream windows and etcd's watch buffer hold together.
    let noise = vec![b'x'; 64 * 1024];
    for i in 0..300 {
        f.etcd.put(&format!("/sy-test/noise/{i}"), &noise);
    }
    let (status, body) = switch(&a, "green", "", &[]);
    assert_eq!(status, 200, "{body}");
    // …and the revisions it missed are compacted away.
    f.etcd.compact(f.etcd.revision());
    c.signal(libc::SIGCONT);
    c.wait_log("watch cancelled; reading everything again");
    eventually("c converges", Duration::from_secs(10), || served(&c) == "green");
    assert_eq!(json(c.admin, "GET", "/v1/services/shop", &[], "").1["version"], body["version"]);
}

#[test]
fn with_etcd_unreachable_at_start_a_replica_serves_from_its_state_file_and_joins_when_it_appears() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(mut f) = fleet() else { return };
    f.etcd.stop();
    let a = replica(f.root(), "a", &f.etcd, &[("blue", &f.blue), ("green", &f.green)]);
    assert_eq!(served(&a), "blue", "it serves the file's traffic at once");
    let health = common::http::request(a.admin, "GET", "/healthz", &[], "").unwrap();
    assert_eq!(health.0, 200);
    assert!(health.1.contains("cluster: store unreachable since"), "{}", health.1);
    assert_eq!(switch(&a, "green", "", &[]).0, 503);
    f.etcd.restart();
    in_step(&a, 1);
    let (status, body) = switch(&a, "green", r#","wait_replicas":"5s""#, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(served(&a), "green");
}

#[test]
fn a_proxy_with_a_long_history_seeds_a_new_cluster_and_the_next_replica_gets_its_history() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(f) = fleet() else { return };
    let pools = [("blue", &f.blue), ("green", &f.green)];
    // First a single proxy (no [cluster]) with more history than one etcd transaction takes.
    let alone = |t: String| {
        let (head, rest) = t.split_once("[cluster]").unwrap();
        format!("{head}[[service]]{}", rest.split_once("[[service]]").unwrap().1)
    };
    let single = replica_with(f.root(), "a", &f.etcd, &pools, alone);
    for i in 0..150 {
        assert_eq!(switch(&single, ["green", "blue"][i % 2], "", &[]).0, 200);
    }
    let version = json(single.admin, "GET", "/v1/services/shop", &[], "").1["version"].clone();
    drop(single);
    let a = replica(f.root(), "a", &f.etcd, &pools);
    in_step(&a, 1);
    let b = replica(f.root(), "b", &f.etcd, &pools);
    in_step(&b, 2);
    assert_eq!(json(b.admin, "GET", "/v1/services/shop", &[], "").1["version"], version);
    assert!(versions(&b).len() >= 100, "{}", versions(&b).len());
}
