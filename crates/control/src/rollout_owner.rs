//! Cluster mode: who drives a rollout (SPEC §8 "Rollouts"). The replica holding
//! `rollout-owner/SVC` (a key under its lease) judges the traffic it sees itself
//! and steps the rollout; the others follow its steps through the store. The
//! starter takes the key before the rollout's first step is committed; if the
//! holder dies its lease expires, the key goes, and the first replica to claim
//! it takes the rollout over at the same step with a fresh window.

use crate::command::ControlError;
use crate::controller::Controller;

impl Controller {
    /// Before a rollout starts here: this replica holds its owner key.
    pub(crate) fn claim_start(&mut self, service: &str) -> Result<(), ControlError> {
        let Some(sh) = &mut self.shared else { return Ok(()) };
        sh.store.claim_rollout(service, true).map_err(ControlError::StoreDown)?;
        sh.owners.insert(service.to_owned(), sh.store.replica().to_owned());
        sh.owned.insert(service.to_owned());
        Ok(())
    }

    /// Owner keys read (`full`: all of them) or seen changing: (service, holder),
    /// `None` when the key went (its holder's lease expired).
    pub(crate) fn owners(&mut self, full: bool, owners: Vec<(String, Option<String>)>) {
        let Some(sh) = &mut self.shared else { return };
        if full {
            sh.owners.clear();
        }
        for (service, holder) in owners {
            let mine = holder.as_deref() == Some(sh.store.replica());
            if !mine && sh.owned.remove(&service) {
                tracing::info!(%service, holder = ?holder, "cluster: another replica drives this rollout now");
                self.clocks.remove(&service);
            }
            match holder {
                Some(name) => {
                    if mine {
                        sh.owned.insert(service.clone());
                    }
                    sh.owners.insert(service, name);
                }
                None => {
                    sh.owners.remove(&service);
                }
            }
        }
    }

    /// On a tick: a running rollout nobody holds is claimed; the winner drives it
    /// from its current step with a fresh window.
    pub(crate) fn adopt_orphans(&mut self) {
        let Some(sh) = &self.shared else { return };
        if !sh.store.ready() {
            return;
        }
        let orphans: Vec<String> = self
            .state
            .services
            .iter()
            .filter(|(name, st)| st.running().is_some() && !sh.owned.contains(*name) && !sh.owners.contains_key(*name))
            .map(|(name, _)| name.clone())
            .collect();
        for service in orphans {
            let Some(sh) = &mut self.shared else { return };
            match sh.store.claim_rollout(&service, false) {
                Ok(true) => {
                    sh.owned.insert(service.clone());
                    sh.owners.insert(service.clone(), sh.store.replica().to_owned());
                    self.clocks.remove(&service);
                    if let Some(r) = self.state.services.get(&service).and_then(|st| st.running()) {
                        tracing::warn!(%service, rollout = %r.id, step = r.step + 1, steps = r.steps.len(), "cluster: took over a rollout whose driver left; same step, fresh window");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(%service, "cluster: cannot claim the rollout yet: {e}"),
            }
        }
    }
}
