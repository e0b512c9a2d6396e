//! A reload (SIGHUP, `--watch`, `POST /v1/reload`): all or nothing. The new file is
//! read and checked, merged with runtime state, its certificate and preview key
//! loaded — and only when the state file has been written and the table published
//! are the certificate and key put in service. Settings only a restart can change
//! keep their running values and come back as warnings.

use crate::command::{ControlError, ReloadSource, Reply};
use crate::controller::{Controller, now};
use crate::merge::changes;
use crate::preview_key;
use crate::view::ReloadOutcome;
use serde::Serialize;
use switchyard_config::Config;
use switchyard_proxy::tls;

/// A reload that was applied.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// The config generation now in force.
    pub generation: u64,
    /// Settings that changed in the file but take effect only at the next restart.
    pub warnings: Vec<String>,
}

impl Controller {
    pub(crate) fn reload(&mut self, source: ReloadSource) -> Result<Reply, ControlError> {
        let mut config = match switchyard_config::load_reusing(&self.config.source, &self.config) {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(source, e.lines())),
        };
        let mut warnings = keep_restart_only(&self.config, &mut config);
        warnings.extend(self.keep_shared_traffic(&mut config));
        self.keep_discovered(&mut config);
        if let Some(problem) = self.exposed(&config) {
            return Err(self.refuse(source, vec![problem]));
        }
        let next = match changes(&config, &self.config, &self.state) {
            Ok(n) => n,
            Err(problems) => return Err(self.refuse(source, problems)),
        };
        // Loaded now, put in service only after the commit.
        let certificate = match (&self.tls, &config.listener.tls) {
            (Some(_), Some(t)) => match tls::load(&t.cert, &t.key) {
                Ok(c) => Some(c),
                Err(problem) => return Err(self.refuse(source, vec![problem])),
            },
            _ => None,
        };
        let key = match preview_key::load_or_create(&config) {
            Ok(k) => k,
            Err(problem) => return Err(self.refuse(source, vec![problem])),
        };
        if let Err(e) = self.commit_all(config, next, self.generation + 1, key) {
            self.last_reload = Some(outcome(source, false, vec![e.to_string()]));
            switchyard_metrics::reload(false);
            tracing::error!(source = source.as_str(), "reload not applied, old config kept: {e}");
            return Err(e);
        }
        // Cluster mode: services new in the file get their shared key (or take the
        // one another replica made); the store being down defers it to the next read.
        if let Err(e) = self.seed_missing() {
            tracing::warn!("cluster: new services not seeded yet: {e}");
        }
        if let (Some(live), Some(c)) = (&self.tls, certificate) {
            live.store(c);
        }
        for w in &warnings {
            tracing::warn!("{w}");
        }
        self.last_reload = Some(outcome(source, true, Vec::new()));
        switchyard_metrics::reload(true);
        tracing::info!(generation = self.generation, source = source.as_str(), "config reloaded");
        Ok(Reply::Reloaded(ReloadReport { generation: self.generation, warnings }))
    }

    /// Records and logs a refused reload; the old config keeps serving.
    fn refuse(&mut self, source: ReloadSource, problems: Vec<String>) -> ControlError {
        for p in &problems {
            tracing::error!(source = source.as_str(), "reload refused, old config kept: {p}");
        }
        self.last_reload = Some(outcome(source, false, problems.clone()));
        switchyard_metrics::reload(false);
        ControlError::InvalidConfig(problems)
    }

    /// A problem when the new file would leave the admin API, as bound, open beyond
    /// loopback without any token.
    fn exposed(&self, config: &Config) -> Option<String> {
        let bound = self.admin_bound.unwrap_or(self.config.admin.address);
        let has_token = config.admin.token_file.is_some() || self.env_token || !config.admin.tokens.is_empty();
        (!bound.ip().is_loopback() && !has_token).then(|| {
            format!(
                "{}: the admin API listens on {bound}, which is not loopback; a reload cannot leave it without a token (keep [admin] token_file or [[admin.tokens]])",
                config.source.display()
            )
        })
    }
}

fn outcome(source: ReloadSource, ok: bool, problems: Vec<String>) -> ReloadOutcome {
    ReloadOutcome { at: now(), source: source.as_str(), ok, problems }
}

/// Puts the running values of restart-only settings back into `new`, returning
/// one warning per setting the file changed.
fn keep_restart_only(running: &Config, new: &mut Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut warn = |what: &str, from: String, to: String| {
        warnings.push(format!("{what} changed ({from} → {to}); it takes effect at the next restart"));
    };
    let (r, n) = (&running.listener, &mut new.listener);
    if r.address != n.address {
        warn("[listener] address", r.address.to_string(), n.address.to_string());
        n.address = r.address;
    }
    let limits = |l: &switchyard_config::Listener| {
        (l.header_timeout, l.idle_timeout, l.max_header_bytes, l.max_connections, l.max_request_body)
    };
    if limits(r) != limits(n) {
        warn(
            "[listener] header_timeout/idle_timeout/max_header_bytes/max_connections/max_request_body",
            format!("{:?}", limits(r)),
            format!("{:?}", limits(n)),
        );
        (n.header_timeout, n.idle_timeout, n.max_header_bytes, n.max_connections, n.max_request_body) = limits(r);
    }
    match (&r.tls, &mut n.tls) {
        (None, Some(_)) => {
            warn("[listener.tls]", "absent".into(), "added".into());
            n.tls = None;
        }
        (Some(t), None) => {
            warn("[listener.tls]", "present".into(), "removed".into());
            n.tls = Some(t.clone());
        }
        (Some(t), Some(nt)) if t.address != nt.address => {
            warn("[listener.tls] address", t.address.to_string(), nt.address.to_string());
            nt.address = t.address;
        }
        _ => {}
    }
    if running.admin.address != new.admin.address {
        warn("[admin] address", running.admin.address.to_string(), new.admin.address.to_string());
        new.admin.address = running.admin.address;
    }
    if running.runtime != new.runtime {
        warn("[runtime]", format!("{:?}", running.runtime), format!("{:?}", new.runtime));
        new.runtime = running.runtime.clone();
    }
    if running.cluster != new.cluster {
        warn("[cluster]", format!("{:?}", running.cluster), format!("{:?}", new.cluster));
        new.cluster = running.cluster.clone();
    }
    warnings
}
