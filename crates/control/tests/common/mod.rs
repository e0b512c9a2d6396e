//! The control path in process: a temp config with two real upstreams, a
//! controller on it, and its handle.

#![allow(clippy::unwrap_used, dead_code)] // test helpers fail loudly by design; each test file uses a part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use switchyard_config::Weight;
use switchyard_control::{ChangeMeta, ControlHandle, Controller, spawn};
use switchyard_proxy::Router;
use switchyard_test_support::Upstream;

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub handle: ControlHandle,
    pub router: Router,
    pub blue: Upstream,
    pub green: Upstream,
}

impl Fixture {
    /// Rewrites the config file with `traffic` and `extra` text after the two pools.
    pub fn rewrite(&self, traffic: &str, extra: &str) {
        let dir = self.path.parent().unwrap();
        std::fs::write(&self.path, config_text(dir, &self.blue, &self.green, traffic) + extra).unwrap();
    }
}

pub fn config_text(dir: &Path, blue: &Upstream, green: &Upstream, traffic: &str) -> String {
    format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"{}\"\n[[service]]\nname = \"shop\"\n[service.traffic]\n{traffic}\n[service.pools.blue]\nbackends = [\"{}\"]\n[service.pools.green]\nbackends = [\"{}\"]\n",
        dir.join("state.json").display(),
        blue.address(),
        green.address()
    )
}

pub async fn fixture(traffic: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (blue, green) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let path = dir.path().join("sy.toml");
    std::fs::write(&path, config_text(dir.path(), &blue, &green, traffic)).unwrap();
    let config = switchyard_config::load(&path).unwrap();
    let (controller, router) = Controller::start(config, false).unwrap();
    Fixture { _dir: dir, path, handle: spawn(controller), router, blue, green }
}

pub fn meta(reason: &str) -> ChangeMeta {
    ChangeMeta { actor: "api".into(), reason: reason.into(), ..ChangeMeta::default() }
}

pub fn weights(blue: u32, green: u32) -> BTreeMap<String, Weight> {
    BTreeMap::from([("blue".into(), Weight(blue * 100)), ("green".into(), Weight(green * 100))])
}
