//! Cluster tests' shared parts: a real etcd, `switchyard serve` replicas in
//! their own folders, `switchyard app` fleets, and the calls the tests make.

use super::etcd::{self, Etcd};
use super::http::json;
use super::{App, Sy};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One test at a time: each runs etcd, three proxies and their upstreams.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long a replica's key outlives it.
pub const LEASE: &str = "2s";

/// A replica's config: service `shop` with `pools`, blue active, in `dir`.
pub fn config(dir: &Path, name: &str, etcd: &Etcd, pools: &[(&str, &App)]) -> PathBuf {
    let mut text = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"state/sy.json\"\n[cluster]\netcd = [\"{}\"]\nprefix = \"/sy-test\"\nname = \"{name}\"\nlease_ttl = \"{LEASE}\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n",
        etcd.url()
    );
    for (pool, app) in pools {
        text.push_str(&format!("[service.pools.{pool}]\nbackends = [\"{}\"]\n", app.addr));
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("sy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts replica `name` in `root/name`.
pub fn replica(root: &Path, name: &str, etcd: &Etcd, pools: &[(&str, &App)]) -> Sy {
    replica_with(root, name, etcd, pools, |text| text)
}

/// Starts replica `name` in `root/name`, its config text passed through `edit` first.
pub fn replica_with(
    root: &Path,
    name: &str,
    etcd: &Etcd,
    pools: &[(&str, &App)],
    edit: impl Fn(String) -> String,
) -> Sy {
    let path = config(&root.join(name), name, etcd, pools);
    std::fs::write(&path, edit(std::fs::read_to_string(&path).unwrap())).unwrap();
    Sy::start(&path, &["--access-log", "off"])
}

/// `GET /v1/cluster` of a replica.
pub fn cluster(sy: &Sy) -> Value {
    json(sy.admin, "GET", "/v1/cluster", &[], "").1
}

/// Polls (a state of other processes, with no event to await) until `cond` holds.
pub fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// Waits until `sy` is in step with the store and sees `n` replicas.
pub fn in_step(sy: &Sy, n: usize) {
    eventually(&format!("{} connected with {n} replicas", sy.admin), Duration::from_secs(20), || {
        let c = cluster(sy);
        c["connected"] == true && c["replicas"].as_array().is_some_and(|r| r.len() == n)
    });
}

/// The pool that answers a request through `sy`'s proxy.
pub fn served(sy: &Sy) -> String {
    super::http::request(sy.proxy, "GET", "/", &[], "").map(|(_, b)| b.trim().to_owned()).unwrap_or_default()
}

pub fn switch(sy: &Sy, pool: &str, extra: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    json(sy.admin, "POST", "/v1/services/shop/switch", headers, &format!(r#"{{"pool":"{pool}"{extra}}}"#))
}

pub fn versions(sy: &Sy) -> Vec<u64> {
    let h = json(sy.admin, "GET", "/v1/services/shop/history", &[], "").1;
    h["events"].as_array().unwrap().iter().map(|e| e["version"].as_u64().unwrap()).collect()
}

pub struct Fleet {
    _tmp: tempfile::TempDir,
    pub etcd: Etcd,
    pub blue: App,
    pub green: App,
}

pub fn fleet() -> Option<Fleet> {
    if !etcd::available() {
        return None;
    }
    Some(Fleet {
        _tmp: tempfile::tempdir().unwrap(),
        etcd: Etcd::start(),
        blue: App::start("blue", &[]),
        green: App::start("green", &[]),
    })
}

impl Fleet {
    pub fn root(&self) -> &Path {
        self._tmp.path()
    }

    pub fn replicas(&self, names: &[&str]) -> Vec<Sy> {
        let pools = [("blue", &self.blue), ("green", &self.green)];
        let all: Vec<Sy> = names.iter().map(|n| replica(self.root(), n, &self.etcd, &pools)).collect();
        for sy in &all {
            in_step(sy, names.len());
        }
        all
    }
}
