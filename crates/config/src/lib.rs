//! switchyard-config owns the config file: reading it, checking every rule of
//! SPEC §2, and reporting each problem as `FILE:LINE:COL: message`.
//!
//! It walks toml's spanned document tree itself instead of using serde's
//! `deny_unknown_fields`, because serde stops at the first problem and users need
//! all of them at once (like `nginx -t`). It must not depend on any other switchyard
//! crate; everything else depends on it.

mod error;
mod model;
mod reader;
mod rollout;
mod rollout_api;
mod rollout_model;
mod sections;
mod segments;
mod service;
mod weight;

pub use error::{ConfigError, Problem};
pub use model::*;
pub use reader::{parse_duration, parse_size};
pub use rollout_api::rollout_overrides;
pub use rollout_model::{Analysis, OnInconclusive, RolloutSettings, Smoke, format_duration};
pub use segments::Segments;
pub use service::check_backend;
pub use weight::{Weight, from_f64 as weight_from_f64};

use error::{Problems, locate};
use reader::Table;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use toml::de::DeTable;

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Io { file: path.display().to_string(), message: e.to_string() })?;
    parse(&text, path)
}

/// Validates config text; `path` names it in messages and anchors relative paths.
pub fn parse(src: &str, path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let doc = DeTable::parse(src).map_err(|e| ConfigError::Syntax {
        file: file.clone(),
        problem: locate(src, e.span().map_or(0, |s| s.start), e.message().trim().to_owned()),
    })?;
    let mut p = Problems::new(src);
    let mut root = Table::new("the top level", 0, doc.get_ref());
    let globals = Globals::take(&mut root, &mut p, path);
    let mut services = Vec::new();
    let mut spans = Vec::new();
    match root.take("service") {
        None => p.at(0, "no [[service]] defined"),
        Some(f) => {
            for item in f.array(&mut p).unwrap_or_default() {
                if let Some(t) = item.table(&mut p, "[[service]]") {
                    let (s, sp) = service::service(t, &mut p);
                    services.push(Arc::new(s));
                    spans.push(sp);
                }
            }
        }
    }
    root.finish(&mut p);
    across_services(&services, &spans, &mut p);
    if globals.cluster.is_none() {
        for at in spans.iter().filter_map(|s| s.discover_at) {
            p.at(at, "`discover = true` needs a [cluster] section: backends are discovered through etcd");
        }
    }
    if !p.is_empty() {
        return Err(ConfigError::Invalid { file, problems: p.into_problems() });
    }
    let name_at: Vec<usize> = spans.iter().map(|s| s.name_at).collect();
    Ok(globals.config(path, services, Segments::index(src, &name_at)))
}

/// The sections outside `[[service]]`.
pub(crate) struct Globals {
    runtime: Runtime,
    listener: Listener,
    admin: Admin,
    state: State,
    cluster: Option<Cluster>,
}

impl Globals {
    /// Takes them from the top level of the file at `path` (relative paths are
    /// relative to its folder).
    pub(crate) fn take(root: &mut Table, p: &mut Problems, path: &Path) -> Globals {
        let base = path.parent().unwrap_or(Path::new("."));
        Globals {
            runtime: sections::runtime(root.take("runtime"), p),
            listener: sections::listener(root.take("listener"), p, base),
            admin: sections::admin(root.take("admin"), p, base),
            state: sections::state(root.take("state"), p, base),
            cluster: sections::cluster(root.take("cluster"), p),
        }
    }

    /// Whether the file has a `[cluster]` section.
    pub(crate) fn has_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// The config of these sections and `services`.
    pub(crate) fn config(self, path: &Path, services: Vec<Arc<Service>>, segments: Segments) -> Config {
        let Globals { runtime, listener, admin, state, cluster } = self;
        Config { source: path.to_owned(), runtime, listener, admin, state, services, cluster, segments }
    }
}

/// Reads the config file at `path` like `load`, taking every service whose text
/// did not change since `previous` was read from it (see `segments`): a reload
/// that edits one service of 50,000 parses one. The result is the same as `load`'s.
pub fn load_reusing(path: &Path, previous: &Config) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Io { file: path.display().to_string(), message: e.to_string() })?;
    match segments::reuse(&text, path, previous) {
        Some(config) => Ok(config),
        None => parse(&text, path),
    }
}

/// Names, catch-alls and hosts must each belong to one service.
pub(crate) fn across_services(services: &[Arc<Service>], spans: &[service::Spans], p: &mut Problems) {
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(services.len());
    let mut hosts: HashMap<&str, &str> = HashMap::with_capacity(services.len());
    let mut catch_all: Option<&str> = None;
    for (s, sp) in services.iter().zip(spans) {
        if names.insert(&s.name, sp.name_at).is_some() {
            p.at(sp.name_at, format!("duplicate service name \"{}\"", s.name));
        }
        if s.is_catch_all() {
            match catch_all {
                Some(first) => p.at(
                    sp.hosts_at.first().copied().unwrap_or(sp.name_at),
                    format!("service \"{}\" is a second catch-all (\"{first}\" already matches every host)", s.name),
                ),
                None => catch_all = Some(&s.name),
            }
        }
        for (h, at) in s.hosts.iter().zip(&sp.hosts_at) {
            if let Some(owner) = hosts.insert(h, &s.name).filter(|o| *o != s.name) {
                p.at(*at, format!("host \"{h}\" is already claimed by service \"{owner}\""));
            }
        }
    }
}

#[cfg(test)]
mod rollout_api_tests;
#[cfg(test)]
mod rollout_tests;
#[cfg(test)]
mod tests;
