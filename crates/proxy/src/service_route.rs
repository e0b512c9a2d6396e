//! One service of the routing snapshot and its pools, built from its config and
//! traffic. A rebuild lends the previous route's backends, counters and connection
//! pools, so in-flight counts and health carry across switches; a route whose
//! config and traffic did not change is reused as it is.

use crate::backend::{Backend, PoolStats};
use crate::client::LazyClient;
use crate::idle::IdleConns;
use crate::pick;
use crate::table::ConnSettings;
use http::HeaderName;
use metrics::Counter;
use std::sync::Arc;
use std::sync::OnceLock;
use switchyard_config::{Protocol, Service, Sticky, Timeouts, Traffic, Weight};
use switchyard_metrics::LazyPoolMetrics;

/// One service as the hot path sees it.
pub struct ServiceRoute {
    /// The config it was built from (a reload that keeps this very `Arc` changed
    /// nothing in it: no comparison needed).
    pub(crate) source: Arc<Service>,
    /// Service name.
    pub name: Box<str>,
    /// Pools in config order.
    pub pools: Box<[PoolRoute]>,
    /// Cumulative weights in hundredths (`cumulative[i]` = sum of weights 0..=i).
    cumulative: Box<[u32]>,
    /// The pool with 100 %, if one has it: no draw needed.
    sole: Option<usize>,
    /// Upstream timeouts.
    pub timeouts: Timeouts,
    /// Stickiness, used by the sticky canary.
    pub sticky: Option<Sticky>,
    /// Close upgraded connections this long after their pool lost all weight.
    pub drain_timeout: Option<std::time::Duration>,
    /// The sticky header's name, parsed once.
    pub(crate) sticky_header: Option<HeaderName>,
    /// Trusted header that names a pool per request.
    pub override_header: Option<HeaderName>,
    /// `switchyard_preview_tokens_rejected_total` for this service, resolved at the first rejection.
    preview_rejected: OnceLock<Counter>,
}

/// One pool of a service.
pub struct PoolRoute {
    /// Pool name.
    pub name: Box<str>,
    /// Its share of traffic.
    pub weight: Weight,
    /// Its backends, healthy or not.
    pub backends: Box<[Arc<Backend>]>,
    /// Counters that outlive table swaps.
    pub stats: Arc<PoolStats>,
    /// Metric handles, resolved at the pool's first request.
    pub metrics: Arc<LazyPoolMetrics>,
    /// The pool's own connection pool; replaced when the pool loses all traffic so
    /// its idle upstream connections close (draining).
    pub(crate) client: Arc<LazyClient>,
    /// Idle HTTP/1 connections per backend (same order as `backends`), replaced with it.
    pub(crate) conns: Box<[Arc<IdleConns>]>,
    /// After the pool lost all its traffic: the idle connections it had, per backend
    /// (same order), until `DRAIN_GRACE` has passed; empty otherwise.
    retired: Box<[Arc<IdleConns>]>,
    /// `max_upstream_connections` those were made with (kept only while it holds).
    conn_cap: usize,
    protocol: Protocol,
}

impl ServiceRoute {
    pub(crate) fn build(
        svc: &Arc<Service>,
        traffic: Option<&Traffic>,
        prev: Option<&Arc<ServiceRoute>>,
        settings: ConnSettings,
    ) -> ServiceRoute {
        let pools: Box<[PoolRoute]> = svc
            .pools
            .iter()
            .map(|p| {
                let old = prev.and_then(|s| s.pool(&p.name));
                // No traffic given: the weights the previous route runs at.
                let weight = match (traffic, old) {
                    (Some(t), _) => t.weight(&p.name),
                    (None, Some(o)) => o.weight,
                    (None, None) => svc.traffic.weight(&p.name),
                };
                // The connection pools are kept while their settings hold. A pool that loses
                // all weight gets fresh ones: hyper's closes its idle connections at once, the
                // HTTP/1 path's are retired (closed after `DRAIN_GRACE`) and come back if the
                // pool regains traffic within it.
                let settled = old.filter(|o| {
                    o.protocol == p.protocol
                        && o.conn_cap == settings.cap
                        && prev.is_some_and(|s| s.timeouts == svc.timeouts)
                });
                let drained = settled.is_some_and(|o| o.weight > Weight::ZERO) && weight == Weight::ZERO;
                let regained = weight > Weight::ZERO
                    && settled.is_some_and(|o| {
                        o.weight == Weight::ZERO && !o.retired.is_empty() && o.retired.iter().all(|c| !c.expired())
                    });
                let client = match settled.filter(|_| !drained) {
                    Some(o) => o.client.clone(),
                    None => Arc::new(LazyClient::new(&svc.timeouts, p.protocol)),
                };
                let fresh = || Arc::new(IdleConns::new(svc.timeouts.pool_idle, settings.shards, settings.cap));
                // Per backend: its shared state from the old pool, its idle connections, and
                // those of the traffic it lost (while they wait out the grace).
                let mut retired = Vec::new();
                let (backends, conns): (Vec<_>, Vec<_>) = p
                    .addresses()
                    .map(|addr| {
                        let at = old.and_then(|o| o.backends.iter().position(|b| b.address() == addr.as_str()));
                        let backend =
                            old.zip(at).map_or_else(|| Arc::new(Backend::new(addr)), |(o, i)| o.backends[i].clone());
                        let kept = settled.zip(at);
                        let conns = match kept {
                            // Revived or retired by `activate`, once this route is published.
                            Some((o, i)) if regained => o.retired[i].clone(),
                            Some((o, i)) if drained => {
                                retired.push(o.conns[i].clone());
                                fresh()
                            }
                            Some((o, i)) => {
                                if let Some(r) = o.retired.get(i).filter(|r| !r.expired()) {
                                    retired.push(r.clone());
                                }
                                o.conns[i].clone()
                            }
                            None => fresh(),
                        };
                        (backend, conns)
                    })
                    .unzip();
                // Kept only whole (one per backend, in order).
                let retired = if retired.len() == backends.len() { retired.into() } else { Box::default() };
                PoolRoute {
                    name: p.name.as_str().into(),
                    weight,
                    backends: backends.into(),
                    stats: old.map_or_else(Default::default, |o| o.stats.clone()),
                    metrics: old
                        .map_or_else(|| Arc::new(LazyPoolMetrics::new(&svc.name, &p.name)), |o| o.metrics.clone()),
                    client,
                    conns: conns.into(),
                    retired,
                    conn_cap: settings.cap,
                    protocol: p.protocol,
                }
            })
            .collect();
        let mut sum = 0;
        let cumulative = pools
            .iter()
            .map(|p| {
                sum += p.weight.0;
                sum
            })
            .collect();
        let sole = pools.iter().position(|p| p.weight == Weight::FULL);
        ServiceRoute {
            source: svc.clone(),
            name: svc.name.as_str().into(),
            pools,
            cumulative,
            sole,
            timeouts: svc.timeouts.clone(),
            sticky: svc.sticky.clone(),
            drain_timeout: svc.drain_timeout,
            sticky_header: match &svc.sticky {
                Some(Sticky::Header { name }) => HeaderName::try_from(name.as_str()).ok(),
                _ => None,
            },
            override_header: svc.override_header.as_deref().and_then(|h| HeaderName::try_from(h).ok()),
            preview_rejected: OnceLock::new(),
        }
    }

    /// Whether building `svc` at `traffic` (`None`: at its weights now) would give
    /// this very route: then a reload keeps it as it is (same pools, backends,
    /// weights and settings).
    pub(crate) fn unchanged(&self, svc: &Arc<Service>, traffic: Option<&Traffic>, settings: ConnSettings) -> bool {
        if Arc::ptr_eq(&self.source, svc) && traffic.is_none() && self.pools.iter().all(|p| p.conn_cap == settings.cap)
        {
            return true;
        }
        *self.name == *svc.name
            && self.timeouts == svc.timeouts
            && self.sticky == svc.sticky
            && self.drain_timeout == svc.drain_timeout
            && self.override_header.as_ref().map(HeaderName::as_str)
                == svc
                    .override_header
                    .as_deref()
                    .and_then(|h| HeaderName::try_from(h).ok())
                    .as_ref()
                    .map(HeaderName::as_str)
            && self.pools.len() == svc.pools.len()
            && self.pools.iter().zip(&svc.pools).all(|(have, want)| {
                *have.name == *want.name
                    && traffic.is_none_or(|t| have.weight == t.weight(&want.name))
                    && have.protocol == want.protocol
                    && have.conn_cap == settings.cap
                    && have.backends.len() == want.addresses().count()
                    && have.backends.iter().zip(want.addresses()).all(|(b, a)| b.address() == a.as_str())
            })
    }

    /// Once its table is published: the connections of a pool without traffic
    /// start (or keep) their grace, those of a pool with traffic stay.
    pub(crate) fn activate(&self) {
        for p in self.pools.iter() {
            if p.weight == Weight::ZERO {
                p.retired.iter().for_each(|c| c.retire());
            } else {
                p.conns.iter().for_each(|c| c.revive());
            }
        }
    }

    /// Counts a preview token it refused.
    pub(crate) fn preview_rejected(&self) {
        self.preview_rejected.get_or_init(|| switchyard_metrics::preview_rejected(&self.name)).increment(1);
    }

    /// Resolves every metric handle now, against the recorder current on this
    /// thread (tests that give a table its own recorder call this).
    pub fn resolve_metrics(&self) {
        self.preview_rejected.get_or_init(|| switchyard_metrics::preview_rejected(&self.name));
        for p in self.pools.iter() {
            p.metrics.get();
        }
    }

    /// The pool of that name.
    pub fn pool(&self, name: &str) -> Option<&PoolRoute> {
        self.pools.iter().find(|p| &*p.name == name)
    }

    /// Draws a pool by weight: index of the first pool whose cumulative range holds `point`.
    pub fn pool_at(&self, point: u32) -> usize {
        self.cumulative.iter().position(|&c| point < c).unwrap_or(0)
    }

    /// Draws a pool independently for this request.
    pub fn draw_pool(&self) -> usize {
        match self.sole {
            Some(i) => i,
            None => self.pool_at(pick::below(Weight::FULL.0)),
        }
    }
}

impl PoolRoute {
    /// Picks a backend: power of two choices on in-flight count, healthy ones only.
    /// Returns the backend's index in `backends`.
    pub fn pick(&self, not: Option<usize>) -> Option<usize> {
        pick::backend(&self.backends, not)
    }

    /// Whether the proxy talks HTTP/2 (prior knowledge) to these backends.
    pub fn is_h2c(&self) -> bool {
        self.protocol == Protocol::H2c
    }

    /// How many of its backends are healthy now.
    pub fn healthy_count(&self) -> usize {
        self.backends.iter().filter(|b| b.is_healthy()).count()
    }
}
