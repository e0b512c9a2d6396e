//! Cluster mode in the one control path (SPEC §8). A change is committed to the
//! store first, by compare-and-swap on the service key's revision, and only then
//! applied here; a lost race applies what won and the command is checked again.
//! What the store reports (a full read, a watch event) is applied through the
//! same local commit as a change made here, or recorded as rejected.

use crate::command::{ControlError, Reply};
use crate::controller::Controller;
use crate::remote::Outcome;
use crate::shared::{Applied, Commit, SharedDoc, SharedStore, Update};
use crate::state::{Event, HISTORY_LIMIT, ServiceState, State};
use std::collections::{HashMap, HashSet};
use switchyard_config::Config;
use tokio::sync::watch;

/// History events a seeded key starts with (etcd's default limit is 128
/// operations per transaction).
const SEED_EVENTS: usize = 100;

/// How often a change lost to a concurrent one is checked and tried again.
pub(crate) const RACE_RETRIES: usize = 8;

/// The store and what this replica took from it.
pub(crate) struct Shared {
    pub(crate) store: Box<dyn SharedStore>,
    /// Per service, the `mod_revision` of the document in force here.
    pub(crate) revs: HashMap<String, i64>,
    /// Who holds each `rollout-owner/SVC` key, as last read (or claimed here).
    pub(crate) owners: HashMap<String, String>,
    /// Automatic rollbacks applied here while the store was unreachable, to
    /// commit when it is back: per service, the version the store has.
    pub(crate) pending: HashMap<String, u64>,
    /// Backends registered in the store, per (service, pool).
    pub(crate) discovered: crate::discovery::Discovered,
    pub(crate) report: Applied,
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
            owners: HashMap::new(),
            pending: HashMap::new(),
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
    /// replica last saw it; returns the revision it was at. `Raced` when another
    /// change won (it is applied here, and the command is checked again).
    pub(crate) fn commit_shared(
        &mut self,
        service: &str,
        before: &ServiceState,
        next: &ServiceState,
    ) -> Result<Option<i64>, ControlError> {
        let Some(sh) = &mut self.shared else { return Ok(None) };
        if !sh.store.ready() {
            return Err(ControlError::StoreDown(
                "the cluster store is unreachable; changes are refused until it is back".into(),
            ));
        }
        // An automatic rollback still waiting to be pushed goes with this change.
        let base = sh.pending.get(service).copied().unwrap_or(before.version);
        let events: Vec<Event> = next.history.iter().filter(|e| e.version > base).map(|e| Event::clone(e)).collect();
        let keep_from = keep_from(next.version);
        let was = sh.revs.get(service).copied();
        match sh.store.commit(service, was.unwrap_or(0), &SharedDoc::of(next), &events, keep_from) {
            Ok(Commit::Done(rev)) => {
                sh.revs.insert(service.to_owned(), rev);
                sh.pending.remove(service);
                Ok(was)
            }
            Ok(Commit::Lost(None)) => {
                // The key is gone (deleted by hand): the next try creates it again.
                sh.revs.remove(service);
                Err(ControlError::Raced)
            }
            Ok(Commit::Lost(Some(remote))) => match self.apply_remote(remote, false) {
                Outcome::Rejected(error) => Err(ControlError::Conflict(format!(
                    "service \"{service}\" changed on another replica to a version this replica cannot apply ({error}); make this change on a replica that can, or give this one the same pools"
                ))),
                Outcome::Failed(error) => Err(ControlError::Persist(error)),
                Outcome::Applied | Outcome::Skipped | Outcome::Unreadable => Err(ControlError::Raced),
            },
            Err(e) => {
                switchyard_metrics::cluster_error("commit");
                Err(ControlError::StoreDown(format!("the cluster store did not take the change: {e}")))
            }
        }
    }

    /// An automatic rollback while the store is unreachable: applied here now,
    /// committed by `push_pending` once the store is back.
    pub(crate) fn commit_pending(&mut self, service: &str, next: ServiceState, why: &str) -> Result<(), ControlError> {
        let (version, stored) = (next.version, self.service_state(service)?.version);
        self.commit_local(service, next)?;
        tracing::warn!(%service, version, "cluster: automatic rollback applied on this replica only ({why}); it is committed when the store is back");
        if let Some(sh) = &mut self.shared {
            sh.pending.entry(service.to_owned()).or_insert(stored);
        }
        Ok(())
    }

    /// Back in step with the store: commits the automatic rollbacks made while it
    /// was away (a service that changed in the store meanwhile dropped out of
    /// `pending` when that change was applied: the store wins, as everywhere).
    fn push_pending(&mut self) {
        let Some(sh) = &mut self.shared else { return };
        if sh.pending.is_empty() {
            return;
        }
        let pending: Vec<(String, u64)> = sh.pending.drain().collect();
        for (service, stored) in pending {
            let Ok(st) = self.service_state(&service).cloned() else { continue };
            let Some(sh) = &mut self.shared else { return };
            let events: Vec<Event> =
                st.history.iter().filter(|e| e.version > stored).map(|e| Event::clone(e)).collect();
            let keep_from = keep_from(st.version);
            let expected = sh.revs.get(&service).copied().unwrap_or(0);
            match sh.store.commit(&service, expected, &SharedDoc::of(&st), &events, keep_from) {
                Ok(Commit::Done(rev)) => {
                    sh.revs.insert(service.clone(), rev);
                    tracing::info!(%service, version = st.version, "cluster: committed the automatic rollback made while the store was unreachable");
                    self.applied_here(&service, st.version);
                }
                Ok(Commit::Lost(remote)) => {
                    // Applying what won drops the pending rollback and its local history.
                    sh.pending.insert(service.clone(), stored);
                    if let Some(r) = remote {
                        self.apply_remote(r, true);
                    }
                }
                Err(e) => {
                    tracing::warn!(%service, "cluster: the automatic rollback is still not committed: {e}");
                    sh.pending.insert(service, stored);
                }
            }
        }
    }

    /// After a commit the store took but this replica could not apply: forget that
    /// revision, so the watch (or the next full read) applies it here again.
    pub(crate) fn unapplied(&mut self, service: &str, was: Option<i64>) {
        if let Some(sh) = &mut self.shared {
            match was {
                Some(rev) => sh.revs.insert(service.to_owned(), rev),
                None => sh.revs.remove(service),
            };
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
        self.owners(sync.full, sync.owners);
        if let (true, Some(sh)) = (sync.full, &mut self.shared) {
            // A key the store no longer has (deleted, or the store restored from
            // an older backup) is seeded again below.
            let read: HashSet<&str> = sync.remotes.iter().map(|r| r.service.as_str()).collect();
            sh.revs.retain(|name, _| read.contains(name.as_str()));
        }
        for remote in sync.remotes {
            self.apply_remote(remote, sync.full);
        }
        self.push_pending();
        if sync.full || sync.preview_key.is_some() {
            self.share_preview_key(sync.preview_key);
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

    /// Cluster mode: an edited `[traffic]` in a reloaded file is ignored.
    pub(crate) fn keep_shared_traffic(&self, config: &mut Config) -> Vec<String> {
        if self.clustered() { keep_traffic(config, &self.state) } else { vec![] }
    }

    /// Writes a service's local state as its first shared document (create-only).
    pub(crate) fn seed(&mut self, service: &str) -> Result<(), ControlError> {
        let Some(sh) = &mut self.shared else { return Ok(()) };
        let Some(st) = self.state.services.get(service) else { return Ok(()) };
        let doc = SharedDoc::of(st);
        let keep_from = keep_from(st.version);
        // etcd allows 128 operations per transaction: the latest events only.
        let recent: Vec<Event> =
            st.history[st.history.len().saturating_sub(SEED_EVENTS)..].iter().map(|e| Event::clone(e)).collect();
        match sh.store.commit(service, 0, &doc, &recent, keep_from) {
            Ok(Commit::Done(rev)) => {
                sh.revs.insert(service.to_owned(), rev);
                tracing::info!(%service, version = doc.version, "cluster: seeded the service's shared state from this replica");
                let version = doc.version;
                self.applied_here(service, version);
                Ok(())
            }
            Ok(Commit::Lost(now)) => {
                if let Some(remote) = now {
                    self.apply_remote(remote, true);
                }
                Ok(())
            }
            Err(e) => Err(ControlError::StoreDown(e)),
        }
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
}

/// Cluster mode: the store is the source of truth for traffic, so a `[traffic]`
/// that differs from what the file said at the last apply is put back as it was
/// (one warning per service): traffic changes through the API.
pub(crate) fn keep_traffic(config: &mut Config, state: &State) -> Vec<String> {
    let mut warnings = vec![];
    for svc in &mut config.services {
        let Some(prev) = state.services.get(&svc.name) else { continue };
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

/// The oldest history version a service at `version` keeps in the store.
fn keep_from(version: u64) -> u64 {
    version.saturating_sub(HISTORY_LIMIT as u64) + 1
}

/// Whether `next` is `before` plus an automatic rollback.
pub(crate) fn is_auto_rollback(before: &ServiceState, next: &ServiceState) -> bool {
    next.history.iter().any(|e| e.version > before.version && e.kind == crate::state::Kind::AutoRollback)
}
