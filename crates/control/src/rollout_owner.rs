//! Cluster mode: who drives a rollout (SPEC §8 "Rollouts"). The replica holding
//! `rollout-owner/SVC` (a key under its lease) judges the traffic it sees itself
//! and steps the rollout; the others follow its steps through the store. The
//! starter takes the key before the rollout's first step is committed; if the
//! holder dies its lease expires, the key goes, and the first replica to claim
//! it takes the rollout over at the same step with a fresh window. A holder that
//! reconnects (new lease) puts its keys under the new lease at once.

use crate::command::ControlError;
use crate::controller::Controller;

impl Controller {
    /// Whether this replica drives the running rollout of `service` (always, alone).
    pub(crate) fn drives(&self, service: &str) -> bool {
        self.shared.as_ref().is_none_or(|sh| sh.owners.get(service).is_some_and(|h| h == sh.store.replica()))
    }

    /// Before a rollout starts here: this replica holds its owner key.
    pub(crate) fn claim_start(&mut self, service: &str) -> Result<(), ControlError> {
        let Some(sh) = &mut self.shared else { return Ok(()) };
        sh.store.claim_rollout(service, true).map_err(ControlError::StoreDown)?;
        sh.owners.insert(service.to_owned(), sh.store.replica().to_owned());
        Ok(())
    }

    /// Owner keys read (`full`: all of them) or seen changing: (service, holder),
    /// `None` when the key went (its holder's lease expired). After a full read,
    /// the keys this replica holds are put under its current lease.
    pub(crate) fn owners(&mut self, full: bool, owners: Vec<(String, Option<String>)>) {
        let Some(sh) = &mut self.shared else { return };
        let before = std::mem::take(&mut sh.owners);
        if !full {
            sh.owners.clone_from(&before);
        }
        for (service, holder) in owners {
            match holder {
                Some(name) => sh.owners.insert(service, name),
                None => sh.owners.remove(&service),
            };
        }
        let me = sh.store.replica().to_owned();
        for (service, holder) in &before {
            if holder == &me && sh.owners.get(service) != Some(&me) {
                tracing::info!(%service, holder = ?sh.owners.get(service), "cluster: this replica no longer drives the rollout");
                self.clocks.remove(service);
            }
        }
        if full {
            self.renew_owned();
        }
    }

    /// Puts the owner keys this replica holds under its current lease.
    fn renew_owned(&mut self) {
        let Some(sh) = &mut self.shared else { return };
        let me = sh.store.replica().to_owned();
        let mine: Vec<String> = sh.owners.iter().filter(|(_, h)| **h == me).map(|(s, _)| s.clone()).collect();
        for service in mine {
            match sh.store.claim_rollout(&service, false) {
                Ok(true) => {}
                Ok(false) => {
                    sh.owners.remove(&service);
                    self.clocks.remove(&service);
                }
                Err(e) => tracing::warn!(%service, "cluster: cannot renew the rollout's owner key: {e}"),
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
            .filter(|(name, st)| st.running().is_some() && !sh.owners.contains_key(*name))
            .map(|(name, _)| name.clone())
            .collect();
        for service in orphans {
            let Some(sh) = &mut self.shared else { return };
            match sh.store.claim_rollout(&service, false) {
                Ok(true) => {
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
