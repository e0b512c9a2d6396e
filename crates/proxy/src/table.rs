//! The routing snapshot: everything a request needs, built in one piece from a
//! `Config` and swapped in atomically. Backends and pool counters are shared with
//! the previous table, so in-flight counts and health carry across switches.

use crate::backend::{Backend, PoolStats};
use crate::client::{UpstreamClient, new_client};
use crate::idle::IdleConns;
use crate::pick;
use crate::preview::PreviewKey;
use http::HeaderName;
use metrics::Counter;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use switchyard_config::{Config, Protocol, Service, Sticky, Timeouts, Weight};
use switchyard_metrics::{PoolMetrics, StatusCounters};

/// An immutable routing snapshot.
pub struct RoutingTable {
    services: Vec<Arc<ServiceRoute>>,
    by_host: HashMap<Box<[u8]>, usize, pick::FxBuild>,
    catch_all: Option<usize>,
    generation: u64,
    /// `requests_total{service="-",pool="-"}`: requests no service matched.
    pub(crate) unrouted: Arc<StatusCounters>,
    preview_key: Option<Arc<PreviewKey>>,
}

/// One service as the hot path sees it.
pub struct ServiceRoute {
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
    /// `switchyard_preview_tokens_rejected_total` for this service.
    pub(crate) preview_rejected: Counter,
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
    /// Pre-resolved metric handles.
    pub metrics: Arc<PoolMetrics>,
    /// The pool's own connection pool; replaced when the pool loses all traffic so
    /// its idle upstream connections close (draining).
    pub(crate) client: UpstreamClient,
    /// Idle HTTP/1 connections per backend (same order as `backends`), replaced with it.
    pub(crate) conns: Box<[Arc<IdleConns>]>,
    /// `max_upstream_connections` those were made with (kept only while it holds).
    conn_cap: usize,
    protocol: Protocol,
}

impl RoutingTable {
    /// Compiles a config. `previous` lends its backends, counters and connection
    /// pools so that state survives the swap; `generation` is the config generation.
    pub fn build(config: &Config, previous: Option<&RoutingTable>, generation: u64) -> RoutingTable {
        let mut by_host = HashMap::with_hasher(pick::FxBuild);
        let mut catch_all = None;
        let mut services = Vec::with_capacity(config.services.len());
        let conns = ConnSettings::from(config);
        for (i, svc) in config.services.iter().enumerate() {
            let prev = previous.and_then(|t| t.service(&svc.name));
            services.push(Arc::new(ServiceRoute::build(svc, prev, conns)));
            if svc.is_catch_all() {
                catch_all.get_or_insert(i);
            }
            for h in &svc.hosts {
                by_host.entry(h.as_bytes().into()).or_insert(i);
            }
        }
        let unrouted = previous.map_or_else(|| Arc::new(StatusCounters::new("-", "-")), |t| t.unrouted.clone());
        let preview_key = previous.and_then(|t| t.preview_key.clone());
        RoutingTable { services, by_host, catch_all, generation, unrouted, preview_key }
    }

    /// A table that routes nothing (every request gets 404).
    pub fn empty() -> RoutingTable {
        RoutingTable {
            services: Vec::new(),
            by_host: HashMap::with_hasher(pick::FxBuild),
            catch_all: None,
            generation: 0,
            unrouted: Arc::new(StatusCounters::new("-", "-")),
            preview_key: None,
        }
    }

    /// The service for a `Host` value (case-insensitive, port ignored), else the catch-all.
    pub fn route(&self, host: &[u8]) -> Option<&Arc<ServiceRoute>> {
        let idx = pick::with_host_key(host, |key| self.by_host.get(key).copied());
        idx.or(self.catch_all).map(|i| &self.services[i])
    }

    /// The service of that name.
    pub fn service(&self, name: &str) -> Option<&Arc<ServiceRoute>> {
        self.services.iter().find(|s| &*s.name == name)
    }

    /// All services, in config order.
    pub fn services(&self) -> &[Arc<ServiceRoute>] {
        &self.services
    }

    /// Sets the key preview tokens are checked with (kept by later tables built from this one).
    pub fn set_preview_key(&mut self, key: Arc<PreviewKey>) {
        self.preview_key = Some(key);
    }

    /// The preview token key, if any.
    pub fn preview_key(&self) -> Option<&PreviewKey> {
        self.preview_key.as_deref()
    }

    /// The config generation this table was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// How each backend's HTTP/1 connections are kept.
#[derive(Clone, Copy)]
struct ConnSettings {
    /// Idle stacks per backend: one per worker thread.
    shards: usize,
    /// `max_upstream_connections` (0 = no limit).
    cap: usize,
}

impl ConnSettings {
    fn from(config: &Config) -> ConnSettings {
        static CORES: OnceLock<usize> = OnceLock::new();
        let cores =
            || *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));
        ConnSettings {
            shards: config.runtime.worker_threads.unwrap_or_else(cores),
            cap: config.listener.max_upstream_connections,
        }
    }
}

impl ServiceRoute {
    fn build(svc: &Service, prev: Option<&Arc<ServiceRoute>>, settings: ConnSettings) -> ServiceRoute {
        let pools: Box<[PoolRoute]> = svc
            .pools
            .iter()
            .map(|p| {
                let weight = svc.traffic.weight(&p.name);
                let old = prev.and_then(|s| s.pool(&p.name));
                // Keep the connection pool while the pool keeps traffic and its settings;
                // a pool that loses all weight gets a fresh one, dropping idle connections.
                let reuse = old.filter(|o| {
                    o.protocol == p.protocol
                        && o.conn_cap == settings.cap
                        && prev.is_some_and(|s| s.timeouts == svc.timeouts)
                        && !(o.weight > Weight::ZERO && weight == Weight::ZERO)
                });
                let client = match reuse {
                    Some(o) => o.client.clone(),
                    None => new_client(&svc.timeouts, p.protocol),
                };
                // Per backend: its shared state from the old pool, and its idle connections
                // when the connection pool is kept.
                let (backends, conns): (Vec<_>, Vec<_>) = p
                    .backends
                    .iter()
                    .map(|addr| {
                        let at = old.and_then(|o| o.backends.iter().position(|b| b.address() == addr.as_str()));
                        let backend =
                            old.zip(at).map_or_else(|| Arc::new(Backend::new(addr)), |(o, i)| o.backends[i].clone());
                        let conns = reuse.zip(at).map_or_else(
                            || Arc::new(IdleConns::new(svc.timeouts.pool_idle, settings.shards, settings.cap)),
                            |(o, i)| o.conns[i].clone(),
                        );
                        (backend, conns)
                    })
                    .unzip();
                PoolRoute {
                    name: p.name.as_str().into(),
                    weight,
                    backends: backends.into(),
                    stats: old.map_or_else(Default::default, |o| o.stats.clone()),
                    metrics: old.map_or_else(|| Arc::new(PoolMetrics::new(&svc.name, &p.name)), |o| o.metrics.clone()),
                    client,
                    conns: conns.into(),
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
            preview_rejected: switchyard_metrics::preview_rejected(&svc.name),
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
