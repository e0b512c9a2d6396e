//! Active health checks: one probe task per backend of every service that has
//! `[service.health]`. A task flips its backend's atomic health flag after
//! `healthy_threshold` successes or `unhealthy_threshold` failures in a row; the
//! hot path reads the flag, so a verdict needs no table rebuild and no lock.

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::sync::Arc;
use switchyard_config::{Config, Health};
use switchyard_proxy::{Backend, RoutingTable};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

type Key = (String, String, String);

struct Probe {
    backend: Arc<Backend>,
    health: Health,
    task: JoinHandle<()>,
}

/// The running probes, kept in line with the current table.
pub(crate) struct HealthChecks {
    runtime: Option<Handle>,
    probes: HashMap<Key, Probe>,
}

impl HealthChecks {
    /// Probes run on the runtime current at creation; without one, none run.
    pub(crate) fn new() -> HealthChecks {
        HealthChecks { runtime: Handle::try_current().ok(), probes: HashMap::new() }
    }

    /// Starts probes for new backends, restarts those whose settings or backend
    /// changed, stops those no longer configured.
    pub(crate) fn reconcile(&mut self, table: &RoutingTable, config: &Config) {
        let Some(rt) = &self.runtime else { return };
        let mut wanted: HashMap<Key, (Arc<Backend>, Health)> = HashMap::new();
        for svc in &config.services {
            let (Some(health), Some(route)) = (&svc.health, table.service(&svc.name)) else { continue };
            for pool in route.pools.iter() {
                for b in pool.backends.iter() {
                    let key = (svc.name.clone(), pool.name.to_string(), b.address().to_owned());
                    wanted.insert(key, (b.clone(), health.clone()));
                }
            }
        }
        self.probes.retain(|key, probe| {
            let keep = wanted.get(key).is_some_and(|(b, h)| Arc::ptr_eq(b, &probe.backend) && *h == probe.health);
            if !keep {
                probe.task.abort();
            }
            keep
        });
        for (key, (backend, health)) in wanted {
            if self.probes.contains_key(&key) {
                continue;
            }
            let task = rt.spawn(probe_loop(key.clone(), backend.clone(), health.clone()));
            self.probes.insert(key, Probe { backend, health, task });
        }
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        for p in self.probes.values() {
            p.task.abort();
        }
    }
}

async fn probe_loop(key: Key, backend: Arc<Backend>, health: Health) {
    let (service, pool, address) = key;
    // A fresh connection per probe: the question is whether the backend accepts them.
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(health.timeout));
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(connector);
    let uri = format!("http://{address}{}", health.path);
    let mut ticks = tokio::time::interval(health.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut successes, mut failures) = (0u32, 0u32);
    switchyard_metrics::backend_healthy(&service, &pool, &address, backend.is_healthy());
    loop {
        ticks.tick().await;
        let outcome = probe(&client, &uri, &health).await;
        match outcome {
            Ok(()) => {
                backend.connect_ok();
                (successes, failures) = (successes.saturating_add(1), 0);
                if successes >= health.healthy_threshold && backend.set_healthy(true) {
                    tracing::info!(%service, %pool, backend = %address, "backend healthy");
                }
            }
            Err(why) => {
                (successes, failures) = (0, failures.saturating_add(1));
                if failures >= health.unhealthy_threshold && backend.set_healthy(false) {
                    tracing::warn!(%service, %pool, backend = %address, %why, "backend unhealthy");
                }
            }
        }
        switchyard_metrics::backend_healthy(&service, &pool, &address, backend.is_healthy());
    }
}

async fn probe(client: &Client<HttpConnector, Empty<Bytes>>, uri: &str, health: &Health) -> Result<(), String> {
    let req =
        Request::get(uri).header("user-agent", "switchyard-health").body(Empty::new()).map_err(|e| e.to_string())?;
    match tokio::time::timeout(health.timeout, client.request(req)).await {
        Err(_) => Err(format!("no answer within {:?}", health.timeout)),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(resp)) if resp.status().is_success() || resp.status().is_redirection() => Ok(()),
        Ok(Ok(resp)) => Err(format!("status {}", resp.status())),
    }
}
