//! Cluster mode in the one control path (SPEC §8). A change is committed to the
//! store first, by compare-and-swap on the service key's revision, and only then
//! applied here; a lost race applies what won and the command is checked again.
//! What the store reports (a full read, a watch event) is applied through the
//! same local commit as a change made here, or recorded as rejected.

use crate::command::{ControlError, Reply};
use crate::controller::Controller;
use crate::shared::{Applied, Commit, Rejected, Remote, SharedDoc, SharedStore, Update};
use crate::state::{Event, HISTORY_LIMIT, ServiceState};
use std::collections::{HashMap, HashSet};
use switchyard_config::{Traffic, Weight};
use tokio::sync::watch;

/// How often a change lost to a concurrent one is checked and tried again.
pub(crate) const RACE_RETRIES: usize = 8;

/// The store and what this replica took from it.
pub(crate) struct Shared {
    store: Box<dyn SharedStore>,
    /// Per service, the `mod_revision` of the document in force here.
    revs: HashMap<String, i64>,
    /// Rollouts this replica drives (started here).
    pub(crate) owned: HashSet<String>,
    /// Backends registered in the store, per (service, pool).
    pub(crate) discovered: crate::discovery::Discovered,
    report: Applied,
    tx: watch::Sender<Applied>,
}

impl Controller {
    /// Cluster mode: changes go through `store`. The receiver follows what this
    /// replica has applied (for its `replicas/NAME` key).
    pub fn attach(&mut self, store: Box<dyn SharedStore>) -> watch::Receiver<Applied> {
        let report = Applied { generation: self.generation, ..Applied::default() };
        let (tx, rx) = watch::channel(report.clone());
        self.shared = Some(Shared {
            store,
            revs: HashMap::new(),
            owned: HashSet::new(),
            discovered: Default::default(),
            report,
            tx,
        });
        rx
    }

    /// Whether this replica runs in cluster mode.
    pub(crate) fn clustered(&self) -> bool {
        self.shared.is_some()
    }

    /// Cluster mode: writes `next` to the store if the service key is where this
    /// replica last saw it. `Raced` when another change won (it is applied here).
    pub(crate) fn commit_shared(
        &mut self,
        service: &str,
        before: &ServiceState,
        next: &ServiceState,
    ) -> Result<(), ControlError> {
        let Some(sh) = &mut self.shared else { return Ok(()) };
        if !sh.store.ready() {
            return Err(ControlError::StoreDown(
                "the cluster store is unreachable; changes are refused until it is back".into(),
            ));
        }
        let events: Vec<Event> = next.history.iter().filter(|e| e.version > before.version).cloned().collect();
        let keep_from = next.version.saturating_sub(HISTORY_LIMIT as u64) + 1;
        let expected = sh.revs.get(service).copied().unwrap_or(0);
        match sh.store.commit(service, expected, &SharedDoc::of(next), &events, keep_from) {
            Ok(Commit::Done(rev)) => {
                sh.revs.insert(service.to_owned(), rev);
                Ok(())
            }
            Ok(Commit::Lost(now)) => {
                if let Some(remote) = now {
                    self.apply_remote(remote);
                }
                Err(ControlError::Raced)
            }
            Err(e) => {
                switchyard_metrics::cluster_error("commit");
                Err(ControlError::StoreDown(format!("the cluster store did not take the change: {e}")))
            }
        }
    }

    /// After a local commit in cluster mode: the version now in force here.
    pub(crate) fn applied_here(&mut self, service: &str, version: u64) {
        if let Some(sh) = &mut self.shared {
            sh.report.applied.insert(service.to_owned(), version);
            sh.report.rejected.remove(service);
        }
    }

    /// Applies what the store read or reported; after a full read, seeds the
    /// services it does not have yet from local state.
    pub(crate) fn sync(&mut self, sync: Update) -> Result<Reply, ControlError> {
        self.discover(sync.full, sync.discovery);
        for remote in sync.remotes {
            self.apply_remote(remote);
        }
        let result = if sync.full { self.seed_missing() } else { Ok(()) };
        self.publish_applied();
        switchyard_metrics::cluster_synced();
        result.map(|()| Reply::Synced)
    }

    /// Seeds every service of the config the store has no key for (as far as this
    /// replica read it).
    pub(crate) fn seed_missing(&mut self) -> Result<(), ControlError> {
        let Some(sh) = &self.shared else { return Ok(()) };
        let missing: Vec<String> =
            self.config.services.iter().filter(|s| !sh.revs.contains_key(&s.name)).map(|s| s.name.clone()).collect();
        for service in missing {
            self.seed(&service)?;
        }
        self.publish_applied();
        Ok(())
    }

    /// Cluster mode: the store is the source of truth for traffic, so an edited
    /// `[traffic]` is put back as it was (one warning per service).
    pub(crate) fn keep_shared_traffic(&self, config: &mut switchyard_config::Config) -> Vec<String> {
        if !self.clustered() {
            return vec![];
        }
        let mut warnings = vec![];
        for svc in &mut config.services {
            let Some(prev) = self.state.services.get(&svc.name) else { continue };
            if !crate::merge::same_table(&prev.config_traffic, &svc.traffic) {
                warnings.push(format!(
                    "service \"{}\": [service.traffic] changed in the file; in cluster mode traffic is changed through the API (switch, weights, rollback), so the edit is ignored",
                    svc.name
                ));
                std::sync::Arc::make_mut(svc).traffic = prev.config_traffic.clone();
            }
        }
        warnings
    }

    /// Writes a service's local state as its first shared document (create-only).
    pub(crate) fn seed(&mut self, service: &str) -> Result<(), ControlError> {
        let Some(sh) = &mut self.shared else { return Ok(()) };
        let Some(st) = self.state.services.get(service) else { return Ok(()) };
        let doc = SharedDoc::of(st);
        let keep_from = st.version.saturating_sub(HISTORY_LIMIT as u64) + 1;
        match sh.store.commit(service, 0, &doc, &[], keep_from) {
            Ok(Commit::Done(rev)) => {
                sh.revs.insert(service.to_owned(), rev);
                tracing::info!(%service, version = doc.version, "cluster: seeded the service's shared state from this replica");
                let version = doc.version;
                self.applied_here(service, version);
                Ok(())
            }
            Ok(Commit::Lost(now)) => {
                if let Some(remote) = now {
                    self.apply_remote(remote);
                }
                Ok(())
            }
            Err(e) => Err(ControlError::StoreDown(e)),
        }
    }

    /// One service key from the store: applied as the service's state here, or
    /// ignored (unreadable), or rejected (this replica's config cannot carry it).
    fn apply_remote(&mut self, remote: Remote) {
        let Some(sh) = &mut self.shared else { return };
        let service = remote.service.clone();
        if sh.revs.get(&service).is_some_and(|&rev| rev >= remote.revision) {
            return;
        }
        // Whatever happens below, a later change here compares against this revision.
        sh.revs.insert(service.clone(), remote.revision);
        let doc = match remote.doc {
            Ok(doc) => doc,
            Err(e) => {
                switchyard_metrics::cluster_error("unreadable_value");
                tracing::error!(%service, revision = remote.revision, "cluster: ignoring an unreadable service document ({e}); the previous state stands");
                return;
            }
        };
        let version = doc.version;
        let next = match self.remote_state(&service, doc, remote.events) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%service, version, "cluster: cannot apply version {version}: {error}; the previous state stands");
                if let Some(sh) = &mut self.shared {
                    sh.report.rejected.insert(service, Rejected { version, error });
                }
                return;
            }
        };
        let id = |st: Option<&ServiceState>| st.and_then(|s| s.rollout.as_ref()).map(|r| r.id.clone());
        if id(self.state.services.get(&service)) != id(Some(&next)) {
            // Another replica's rollout (or none): that replica drives it, not this one.
            self.clocks.remove(&service);
            if let Some(sh) = &mut self.shared {
                sh.owned.remove(&service);
            }
        }
        if self.state.services.get(&service) != Some(&next)
            && let Err(e) = self.commit_local(&service, next)
        {
            tracing::error!(%service, version, "cluster: cannot apply version {version} here: {e}");
            return;
        }
        self.applied_here(&service, version);
    }

    /// The state a shared document gives a service here, or why it cannot.
    fn remote_state(&self, service: &str, doc: SharedDoc, mut events: Vec<Event>) -> Result<ServiceState, String> {
        let svc = self.service_config(service).map_err(|_| "this replica's config has no such service".to_owned())?;
        if let Some((pool, _)) = doc.traffic.0.iter().find(|(p, w)| **w > Weight::ZERO && svc.pool(p).is_none()) {
            return Err(format!("pool \"{pool}\" is not in this replica's config"));
        }
        let traffic = Traffic(svc.pools.iter().map(|p| (p.name.clone(), doc.traffic.weight(&p.name))).collect());
        let sum: u32 = traffic.0.values().map(|w| w.0).sum();
        if sum != Weight::FULL.0 {
            return Err(format!("weights add up to {}, not 100", Weight(sum)));
        }
        let mut st = self.service_state(service).map_err(|e| e.to_string())?.clone();
        events.sort_by_key(|e| e.version);
        events.dedup_by_key(|e| e.version);
        let have = st.version;
        for e in events.into_iter().filter(|e| e.version > have && e.version <= doc.version) {
            st.record(e);
        }
        st.version = doc.version;
        st.traffic = traffic;
        st.undo = doc.undo;
        st.rollout = doc.rollout;
        Ok(st)
    }

    /// Tells the registration what this replica has applied now.
    pub(crate) fn publish_applied(&mut self) {
        let generation = self.generation;
        if let Some(sh) = &mut self.shared {
            sh.report.generation = generation;
            if *sh.tx.borrow() != sh.report {
                sh.tx.send_replace(sh.report.clone());
            }
        }
    }

    /// Whether this replica drives the running rollout of `service` (always, alone).
    pub(crate) fn drives(&self, service: &str) -> bool {
        self.shared.as_ref().is_none_or(|sh| sh.owned.contains(service))
    }

    /// This replica started the rollout of `service`: it drives it.
    pub(crate) fn own(&mut self, service: &str) {
        if let Some(sh) = &mut self.shared {
            sh.owned.insert(service.to_owned());
        }
    }
}
