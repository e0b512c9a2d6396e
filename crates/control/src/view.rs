//! What the status API shows of a service: state joined with the live table.

use crate::state::ServiceState;
use serde::Serialize;
use std::collections::BTreeMap;
use switchyard_config::{Sticky, Traffic};
use switchyard_proxy::ServiceRoute;

/// `GET /v1/services` answer.
#[derive(Debug, Clone, Serialize)]
pub struct ServicesView {
    /// Config generation in force.
    pub generation: u64,
    /// Outcome of the latest reload attempt, if any.
    pub last_reload: Option<ReloadOutcome>,
    /// Every service, in config order.
    pub services: Vec<ServiceView>,
}

/// The latest reload attempt.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadOutcome {
    /// RFC 3339 time.
    pub at: String,
    /// `signal`, `watch` or `admin`.
    pub source: &'static str,
    /// Whether it was applied.
    pub ok: bool,
    /// Every problem when it was not.
    pub problems: Vec<String>,
}

/// One service's status.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    /// Name.
    pub name: String,
    /// Traffic version.
    pub version: u64,
    /// The pool with 100 %, or null while split.
    pub active: Option<String>,
    /// Pool → weight.
    pub traffic: Traffic,
    /// Pool → health and load.
    pub pools: BTreeMap<String, PoolView>,
    /// `{"cookie": NAME}` or `{"header": NAME}`, or null.
    pub sticky: Option<BTreeMap<&'static str, String>>,
    /// The progressive rollout progressing or paused, if any.
    pub rollout: Option<Box<crate::rollout::Rollout>>,
    /// The traffic a rollback would restore now, or null when there is nothing
    /// to roll back (lets a client show "from → to" before it asks).
    pub rollback_to: Option<Traffic>,
}

/// One pool's status.
#[derive(Debug, Clone, Serialize)]
pub struct PoolView {
    /// Healthy backends.
    pub healthy: usize,
    /// Requests in flight.
    pub inflight: u64,
    /// Upgraded (WebSocket) connections open.
    pub upgraded: u64,
    /// Each backend.
    pub backends: Vec<BackendView>,
}

/// One backend's status.
#[derive(Debug, Clone, Serialize)]
pub struct BackendView {
    /// `host:port`.
    pub address: String,
    /// Whether it may be picked.
    pub healthy: bool,
    /// Requests in flight.
    pub inflight: u64,
}

impl ServiceView {
    /// Joins persisted state with the live route.
    pub(crate) fn new(state: &ServiceState, route: &ServiceRoute) -> ServiceView {
        let pools = route
            .pools
            .iter()
            .map(|p| {
                let backends = p
                    .backends
                    .iter()
                    .map(|b| BackendView {
                        address: b.address().into(),
                        healthy: b.is_healthy(),
                        inflight: b.inflight(),
                    })
                    .collect();
                let view = PoolView {
                    healthy: p.healthy_count(),
                    inflight: p.stats.inflight(),
                    upgraded: p.stats.upgraded(),
                    backends,
                };
                (p.name.to_string(), view)
            })
            .collect();
        let sticky = route.sticky.as_ref().map(|s| match s {
            Sticky::Cookie { name, .. } => BTreeMap::from([("cookie", name.clone())]),
            Sticky::Header { name } => BTreeMap::from([("header", name.clone())]),
        });
        ServiceView {
            name: route.name.to_string(),
            version: state.version,
            active: state.traffic.active().map(str::to_owned),
            traffic: state.traffic.clone(),
            pools,
            sticky,
            rollout: state.running().cloned().map(Box::new),
            rollback_to: state.rollback_index().map(|i| Traffic::clone(&state.undo[i])),
        }
    }
}
