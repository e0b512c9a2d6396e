//! Applying one service document from the store (SPEC §8 "Apply"): through the
//! same local commit as a change made here, or rejected (this replica's config
//! cannot carry it), or ignored (unreadable). The revision is taken as applied
//! only when it was: a rejected or failed one is met again by the next change
//! here (which then refuses rather than overwrite it) and by the next full read.

use crate::controller::Controller;
use crate::shared::{Rejected, Remote, SharedDoc};
use crate::state::{Event, ServiceState};
use switchyard_config::{Traffic, Weight};

/// What became of a document.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// In force here now.
    Applied,
    /// This revision (or a later one) is already in force.
    Skipped,
    /// Garbage under the key: ignored, the previous state stands; a change here
    /// may replace it.
    Unreadable,
    /// This replica cannot carry it (recorded under `rejected`).
    Rejected(String),
    /// The local commit failed (state file); tried again on the next event or read.
    Failed(String),
}

impl Controller {
    /// One service key from the store. `full`: it comes from a full read, where
    /// any other revision than the one in force is applied (the store may have
    /// been restored); from a watch, only a later one.
    pub(crate) fn apply_remote(&mut self, remote: Remote, full: bool) -> Outcome {
        let Some(sh) = &mut self.shared else { return Outcome::Skipped };
        let service = remote.service.clone();
        let have = sh.revs.get(&service).copied();
        let known = if full { have == Some(remote.revision) } else { have.is_some_and(|r| r >= remote.revision) };
        if known {
            return Outcome::Skipped;
        }
        let doc = match remote.doc {
            Ok(doc) => doc,
            Err(e) => {
                sh.revs.insert(service.clone(), remote.revision);
                switchyard_metrics::cluster_error("unreadable_value");
                tracing::error!(%service, revision = remote.revision, "cluster: ignoring an unreadable service document ({e}); the previous state stands");
                return Outcome::Unreadable;
            }
        };
        let version = doc.version;
        let next = match self.remote_state(&service, doc, remote.events) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%service, version, "cluster: cannot apply version {version}: {error}; the previous state stands");
                if let Some(sh) = &mut self.shared {
                    sh.report.rejected.insert(service, Rejected { version, error: error.clone() });
                }
                return Outcome::Rejected(error);
            }
        };
        let id = |st: Option<&ServiceState>| st.and_then(|s| s.rollout.as_ref()).map(|r| r.id.clone());
        if id(self.state.services.get(&service)) != id(Some(&next)) {
            // Another rollout (or none): its step clock starts afresh.
            self.clocks.remove(&service);
        }
        if self.state.services.get(&service) != Some(&next)
            && let Err(e) = self.commit_local(&service, next)
        {
            tracing::error!(%service, version, "cluster: cannot apply version {version} here: {e}");
            return Outcome::Failed(format!("version {version} of \"{service}\" cannot be applied here: {e}"));
        }
        if let Some(sh) = &mut self.shared {
            sh.revs.insert(service.clone(), remote.revision);
            if sh.pending.remove(&service).is_some() {
                tracing::error!(%service, version, "cluster: the service changed in the store while it was unreachable here; the local automatic rollback gives way to it");
            }
        }
        self.applied_here(&service, version);
        Outcome::Applied
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
        if let Some(r) = &doc.rollout {
            let ladder = r.steps.windows(2).all(|w| w[0] < w[1]) && r.steps.last() == Some(&Weight::FULL);
            if !ladder || r.step >= r.steps.len() {
                return Err(format!("rollout {} has an invalid step ladder", r.id));
            }
            if let Some(p) = [&r.pool, &r.baseline].into_iter().find(|p| svc.pool(p).is_none()) {
                return Err(format!("rollout {} uses pool \"{p}\", which is not in this replica's config", r.id));
            }
        }
        let mut st = self.service_state(service).map_err(|e| e.to_string())?.clone();
        // The store wins: history this replica has beyond what the store had goes
        // (a store behind it, or an automatic rollback that never reached it).
        let pending = self.shared.as_ref().and_then(|sh| sh.pending.get(service).copied());
        let trusted = st.version.min(doc.version).min(pending.unwrap_or(u64::MAX));
        st.history.retain(|e| e.version <= trusted);
        let have = trusted;
        events.sort_by_key(|e| e.version);
        events.dedup_by_key(|e| e.version);
        for e in events.into_iter().filter(|e| e.version > have && e.version <= doc.version) {
            st.record(e);
        }
        st.version = doc.version;
        st.traffic = traffic;
        st.undo = doc.undo;
        st.rollout = doc.rollout;
        Ok(st)
    }
}
