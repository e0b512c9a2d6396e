//! Reconciling the config file with runtime state (SPEC §3): the latest deliberate
//! change wins. A `[traffic]` that differs from what the file said at the last apply
//! is a new decision in the file; otherwise the runtime decision stands.

use crate::command::ChangeMeta;
use crate::controller::record;
use crate::state::{Kind, ServiceState, State};
use switchyard_config::{Config, Traffic, Weight};

/// The state to run with `config`, given what was saved or running before.
pub(crate) fn merge(config: &Config, old: &State) -> State {
    let mut next = State { format: old.format, services: Default::default() };
    for svc in &config.services {
        let file = svc.traffic.clone();
        let st = match old.services.get(&svc.name) {
            None => {
                ServiceState { version: 1, traffic: file.clone(), config_traffic: file, undo: vec![], history: vec![] }
            }
            Some(prev) => {
                let mut st = prev.clone();
                let runtime = fit(&prev.traffic, svc.pools.iter().map(|p| p.name.as_str()));
                let file_changed = prev.config_traffic != file;
                match runtime {
                    Some(rt) if !file_changed => st.traffic = rt,
                    _ => {
                        let reason = if file_changed {
                            "config file [traffic] changed"
                        } else {
                            "runtime traffic named pools the config no longer has"
                        };
                        if st.traffic != file {
                            st.undo.push(st.traffic.clone());
                            let meta =
                                ChangeMeta { actor: "config".into(), reason: reason.into(), ..ChangeMeta::default() };
                            let from = st.traffic.clone();
                            record(&mut st, Kind::Config, from, file.clone(), meta);
                        }
                    }
                }
                st.config_traffic = file;
                st
            }
        };
        next.services.insert(svc.name.clone(), st);
    }
    next
}

/// Runtime traffic restated over the config's pools, or `None` when it gives
/// weight to a pool that is gone (then it cannot stand).
fn fit<'a>(traffic: &Traffic, pools: impl Iterator<Item = &'a str> + Clone) -> Option<Traffic> {
    let lost = traffic.0.iter().any(|(p, w)| *w > Weight::ZERO && !pools.clone().any(|q| q == p));
    if lost {
        return None;
    }
    Some(Traffic(pools.map(|p| (p.to_owned(), traffic.weight(p))).collect()))
}

/// The config with each service's traffic replaced by the state's.
pub(crate) fn effective(config: &Config, state: &State) -> Config {
    let mut c = config.clone();
    for svc in &mut c.services {
        if let Some(st) = state.services.get(&svc.name) {
            svc.traffic = st.traffic.clone();
        }
    }
    c
}
