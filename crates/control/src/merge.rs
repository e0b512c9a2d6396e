//! Reconciling the config file with runtime state (SPEC §3): the latest deliberate
//! change wins. A `[traffic]` table that differs from what the file said at the last
//! apply is a new decision in the file; otherwise the runtime decision stands —
//! whatever else changed in the file (backends, pools without weight, timeouts).

use crate::command::ChangeMeta;
use crate::controller::record;
use crate::state::{Kind, ServiceState, State};
use std::sync::Arc;
use switchyard_config::{Config, Service, Traffic, Weight};

/// The state to run with `config`, given what was saved or running before; or,
/// when a runtime decision gives weight to a pool the file removed (and the file's
/// `[traffic]` did not change), one problem per such service: that is refused, not
/// guessed.
pub(crate) fn merge(config: &Config, old: &State) -> Result<State, Vec<String>> {
    let mut next = State { format: old.format, services: Default::default() };
    let mut problems = Vec::new();
    for svc in &config.services {
        let prev = old.services.get(&svc.name);
        match merge_one(svc, prev) {
            Ok(Some(st)) => {
                next.services.insert(svc.name.clone(), st);
            }
            Ok(None) => {
                next.services.insert(
                    svc.name.clone(),
                    prev.cloned().unwrap_or_else(|| ServiceState::fresh(svc.traffic.clone())),
                );
            }
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() { Ok(next) } else { Err(problems) }
}

/// What a reload changes in the running state: the services whose state is new or
/// different (in config order), and those the file no longer has. Services it
/// leaves as they were cost a comparison, not a copy.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) set: Vec<(String, ServiceState)>,
    pub(crate) removed: Vec<String>,
}

/// `merge`, as the changes it makes to `old` — whose services were reconciled with
/// `old_config` at the last apply: a service the new config shares with it (the
/// same `Arc`, its text unchanged) at the same place is left as it is without
/// being looked at.
pub(crate) fn changes(config: &Config, old_config: &Config, old: &State) -> Result<Changes, Vec<String>> {
    let mut out = Changes::default();
    let mut problems = Vec::new();
    let mut all_known = true;
    for (i, svc) in config.services.iter().enumerate() {
        if old_config.services.get(i).is_some_and(|o| Arc::ptr_eq(o, svc)) {
            continue;
        }
        let prev = old.services.get(&svc.name);
        all_known &= prev.is_some();
        match merge_one(svc, prev) {
            Ok(Some(st)) => out.set.push((svc.name.clone(), st)),
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
    }
    // Every name of the new config was there and there are as many: none is gone.
    if !(all_known && config.services.len() == old.services.len()) {
        let kept: std::collections::HashSet<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        out.removed = old.services.keys().filter(|n| !kept.contains(n.as_str())).cloned().collect();
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// One service's state under `svc`, given what it was (`None`: a new service):
/// `Ok(None)` when that stands exactly as it is.
fn merge_one(svc: &Service, prev: Option<&ServiceState>) -> Result<Option<ServiceState>, String> {
    let file = svc.traffic.clone();
    let Some(prev) = prev else { return Ok(Some(ServiceState::fresh(file))) };
    if untouched(svc, prev) {
        return Ok(None);
    }
    let mut st = if same_table(&prev.config_traffic, &file) {
        let mut st = prev.clone();
        match fit(&prev.traffic, svc.pools.iter().map(|p| p.name.as_str())) {
            Ok(rt) => st.traffic = rt,
            Err(lost) => {
                return Err(format!(
                    "service \"{}\": the runtime traffic ({}) gives weight to pool \"{lost}\", which the new config removes; move its traffic away first (switch or weights), or change [service.traffic] in the file",
                    svc.name, prev.traffic
                ));
            }
        }
        st.config_traffic = file;
        st
    } else {
        let mut st = prev.clone();
        // The file's [traffic] changed: it wins, and a running rollout stops
        // even when the file names the weights already in force.
        let cancelled = crate::rollout_ctl::cancel(&mut st, "a reload changed [traffic]");
        if st.traffic != file {
            st.undo.push(Arc::new(st.traffic.clone()));
            let mut reason = "config file [traffic] changed".to_owned();
            if let Some(id) = cancelled {
                reason.push_str(&format!("; cancelled rollout {id}"));
            }
            let meta = ChangeMeta { actor: "config".into(), reason, ..ChangeMeta::default() };
            let from = st.traffic.clone();
            record(&mut st, Kind::Config, from, file.clone(), meta);
        }
        st.config_traffic = file;
        st
    };
    // A rollout whose pools the new file removed cannot go on.
    let pools = svc.pools.iter().map(|p| p.name.as_str());
    let orphaned = st.running().is_some_and(|r| {
        svc.pool(&r.pool).is_none() || svc.pool(&r.baseline).is_none() || fit(&r.from, pools.clone()).is_err()
    });
    if orphaned {
        crate::rollout_ctl::cancel(&mut st, "a reload removed one of its pools");
    }
    // A rollback may only return to traffic the new pools can carry.
    st.undo = st.undo.iter().filter_map(|t| fit(t, pools.clone()).ok().map(Arc::new)).collect();
    Ok((st != *prev).then_some(st))
}

/// Whether the file leaves this state exactly as it is (the common case of a
/// reload: another service was edited): same `[traffic]` as last applied, and
/// every traffic it holds already over exactly these pools. No copy is made.
fn untouched(svc: &Service, prev: &ServiceState) -> bool {
    let over_pools = |t: &Traffic| t.0.len() == svc.pools.len() && svc.pools.iter().all(|p| t.0.contains_key(&p.name));
    prev.config_traffic == svc.traffic
        && over_pools(&prev.traffic)
        && prev.undo.iter().all(|t| over_pools(t))
        && prev
            .running()
            .is_none_or(|r| svc.pool(&r.pool).is_some() && svc.pool(&r.baseline).is_some() && over_pools(&r.from))
}

/// Whether two `[traffic]` tables say the same thing: the same weight for every pool
/// that has any. Adding or removing a pool without weight changes nothing.
pub(crate) fn same_table(a: &Traffic, b: &Traffic) -> bool {
    let nonzero = |t: &Traffic| t.0.iter().filter(|(_, w)| **w > Weight::ZERO).map(|(p, w)| (p.clone(), *w)).collect();
    let (a, b): (Vec<_>, Vec<_>) = (nonzero(a), nonzero(b));
    a == b
}

/// Runtime traffic restated over the config's pools, or the name of a pool that is
/// gone but still has weight (then it cannot stand).
fn fit<'a>(traffic: &Traffic, pools: impl Iterator<Item = &'a str> + Clone) -> Result<Traffic, String> {
    if let Some((lost, _)) = traffic.0.iter().find(|(p, w)| **w > Weight::ZERO && !pools.clone().any(|q| q == *p)) {
        return Err(lost.clone());
    }
    Ok(Traffic(pools.map(|p| (p.to_owned(), traffic.weight(p))).collect()))
}

/// The traffic a service runs at: the state's, else the file's.
pub(crate) fn traffic_of<'a>(state: &'a State, svc: &'a Service) -> &'a Traffic {
    state.services.get(&svc.name).map_or(&svc.traffic, |st| &st.traffic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, u32)]) -> Traffic {
        Traffic(pairs.iter().map(|(p, w)| ((*p).to_owned(), Weight(*w))).collect())
    }

    #[test]
    fn a_pool_without_weight_does_not_change_the_table() {
        assert!(same_table(&t(&[("blue", 10_000), ("green", 0)]), &t(&[("blue", 10_000), ("green", 0), ("red", 0)])));
        assert!(same_table(&t(&[("blue", 10_000), ("green", 0)]), &t(&[("blue", 10_000)])));
        assert!(!same_table(&t(&[("blue", 10_000), ("green", 0)]), &t(&[("blue", 0), ("green", 10_000)])));
        assert!(!same_table(&t(&[("blue", 9_000), ("green", 1_000)]), &t(&[("blue", 10_000), ("green", 0)])));
    }

    #[test]
    fn runtime_weight_on_a_removed_pool_cannot_stand() {
        let rt = t(&[("blue", 0), ("green", 10_000)]);
        assert_eq!(fit(&rt, ["blue"].into_iter()), Err("green".to_owned()));
        assert_eq!(
            fit(&rt, ["blue", "green", "red"].into_iter()),
            Ok(t(&[("blue", 0), ("green", 10_000), ("red", 0)]))
        );
    }
}
