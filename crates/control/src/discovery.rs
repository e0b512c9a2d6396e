//! Discovered backends (SPEC §8 "Discovery"): a pool with `discover = true`
//! serves its file backends plus those registered under
//! `discovery/SVC/POOL/HOST:PORT`. A change rebuilds that one service's route
//! (backends it keeps keep their state, connections and in-flight requests; a
//! removed one finishes what it has in flight) and publishes it.

use crate::controller::Controller;
use crate::shared::Found;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use switchyard_config::Config;

/// Per (service, pool), the addresses registered now.
pub(crate) type Discovered = BTreeMap<(String, String), BTreeSet<String>>;

impl Controller {
    /// Applies discovery keys read (`full`: all of them, replacing what was known)
    /// or seen changing.
    pub(crate) fn discover(&mut self, full: bool, found: Vec<Found>) {
        let Some(sh) = &mut self.shared else { return };
        if !full && found.is_empty() {
            return;
        }
        let mut next = if full { Discovered::new() } else { sh.discovered.clone() };
        for f in found {
            let set = next.entry((f.service.clone(), f.pool.clone())).or_default();
            if !f.present {
                set.remove(&f.address);
            } else if let Err(e) = switchyard_config::check_backend(&f.address) {
                switchyard_metrics::cluster_error("unreadable_value");
                tracing::error!(service = %f.service, pool = %f.pool, "cluster: ignoring a discovered backend: {e}");
            } else {
                set.insert(f.address);
            }
        }
        next.retain(|_, set| !set.is_empty());
        let changed: BTreeSet<String> = next
            .keys()
            .chain(sh.discovered.keys())
            .filter(|k| next.get(*k) != sh.discovered.get(*k))
            .map(|(svc, _)| svc.clone())
            .collect();
        sh.discovered = next;
        for service in changed {
            self.refresh_discovered(&service);
        }
    }

    /// Rebuilds one service's route with the backends discovered now.
    fn refresh_discovered(&mut self, service: &str) {
        let Ok(current) = self.service_config(service).cloned() else { return };
        let mut svc = (*current).clone();
        self.fill_discovered(&mut svc);
        if svc == *current {
            return;
        }
        let Ok(st) = self.service_state(service) else { return };
        let svc = Arc::new(svc);
        let Some(table) = self.publisher.current().with_service(&svc, &st.traffic) else { return };
        for p in svc.pools.iter().filter(|p| p.discover) {
            tracing::info!(%service, pool = %p.name, backends = ?p.addresses().collect::<Vec<_>>(), "cluster: discovered backends changed");
        }
        if let Some(at) = self.config.services.iter().position(|s| s.name == service) {
            Arc::make_mut(&mut self.config).services[at] = svc;
        }
        self.publisher.publish(table);
        let table = self.publisher.current();
        self.reconcile_health(&table);
    }

    /// Sets the discovered backends of every discovering pool of `svc`.
    fn fill_discovered(&self, svc: &mut switchyard_config::Service) {
        let Some(sh) = &self.shared else { return };
        for p in svc.pools.iter_mut().filter(|p| p.discover) {
            let key = (svc.name.clone(), p.name.clone());
            p.discovered = sh.discovered.get(&key).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        }
    }

    /// A reload: the new file's discovering pools get the backends discovered now.
    pub(crate) fn keep_discovered(&self, config: &mut Config) {
        if !self.clustered() {
            return;
        }
        for svc in &mut config.services {
            if svc.pools.iter().any(|p| p.discover) {
                let mut next = (**svc).clone();
                self.fill_discovered(&mut next);
                if next != **svc {
                    *svc = Arc::new(next);
                }
            }
        }
    }
}
