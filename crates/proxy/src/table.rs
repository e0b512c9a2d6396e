//! The routing snapshot: everything a request needs, swapped in atomically. Each
//! service is its own `Arc<ServiceRoute>` in a structure-sharing array behind a
//! host index: a traffic change rebuilds only that service's route and shares the
//! rest (`with_service`); a reload (`build`) rebuilds the index and the routes
//! whose config or traffic changed, and reuses the others as they are.

use crate::pick;
use crate::preview::PreviewKey;
use crate::service_route::ServiceRoute;
use crate::slots::Slots;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use switchyard_config::{Config, Service, Traffic};
use switchyard_metrics::StatusCounters;

/// An immutable routing snapshot.
pub struct RoutingTable {
    services: Slots<ServiceRoute>,
    /// Hosts and names → position in `services`; shared until the service set changes.
    index: Arc<Index>,
    settings: ConnSettings,
    generation: u64,
    /// `requests_total{service="-",pool="-"}`: requests no service matched.
    pub(crate) unrouted: Arc<StatusCounters>,
    preview_key: Option<Arc<PreviewKey>>,
    /// Routes built for this table (not shared with the one before), to
    /// `activate` once it is published.
    fresh: Vec<Arc<ServiceRoute>>,
}

/// Where each service sits, by host and by name.
#[derive(Default)]
struct Index {
    by_host: HashMap<Box<[u8]>, usize, pick::FxBuild>,
    by_name: HashMap<Box<str>, usize, pick::FxBuild>,
    catch_all: Option<usize>,
    hosts: usize,
}

impl Index {
    /// The index of `config`: `previous`'s own when it says exactly the same.
    fn of(config: &Config, previous: Option<&RoutingTable>) -> Arc<Index> {
        if let Some(p) = previous.filter(|p| p.index.indexes(config, p)) {
            return p.index.clone();
        }
        let mut index = Index::default();
        for (i, svc) in config.services.iter().enumerate() {
            if svc.is_catch_all() {
                index.catch_all.get_or_insert(i);
            }
            for h in &svc.hosts {
                index.by_host.entry(h.as_bytes().into()).or_insert(i);
            }
            index.hosts += svc.hosts.len();
            index.by_name.entry(svc.name.as_str().into()).or_insert(i);
        }
        Arc::new(index)
    }

    /// Whether this is the index of `config` (a reload that adds, removes, renames or
    /// re-hosts no service keeps it): lookups only, no allocation.
    /// A service whose route in `table` was built from the very same config `Arc`
    /// at the same position needs no lookup.
    fn indexes(&self, config: &Config, table: &RoutingTable) -> bool {
        let catch_all = config.services.iter().position(|s| s.is_catch_all());
        self.by_name.len() == config.services.len()
            && self.hosts == config.services.iter().map(|s| s.hosts.len()).sum::<usize>()
            && self.catch_all == catch_all
            && config.services.iter().enumerate().all(|(i, svc)| {
                table.services.get(i).is_some_and(|r| Arc::ptr_eq(&r.source, svc))
                    || (self.by_name.get(svc.name.as_str()) == Some(&i)
                        && svc.hosts.iter().all(|h| self.by_host.get(h.as_bytes()) == Some(&i)))
            })
    }
}

impl RoutingTable {
    /// Compiles a config at the traffic its file says (see `build_with`).
    pub fn build(config: &Config, previous: Option<&RoutingTable>, generation: u64) -> RoutingTable {
        RoutingTable::build_with(config, |svc| Some(&svc.traffic), previous, generation)
    }

    /// Compiles a config with each service at `traffic(service)` — `None`: at the
    /// weights `previous` runs it at (a reload that did not touch its traffic; a
    /// new service then runs at its file's). `previous` lends its routes: one whose
    /// config and traffic did not change is kept whole, the others borrow its
    /// backends, counters and connection pools so that state survives;
    /// `generation` is the config generation.
    pub fn build_with<'c>(
        config: &'c Config,
        traffic: impl Fn(&'c Arc<Service>) -> Option<&'c Traffic>,
        previous: Option<&RoutingTable>,
        generation: u64,
    ) -> RoutingTable {
        let settings = ConnSettings::from(config);
        let mut fresh = Vec::new();
        let services = config
            .services
            .iter()
            .enumerate()
            .map(|(i, svc)| {
                let traffic = traffic(svc);
                // Where it was, most likely at the same place (no lookup then).
                let prev = previous
                    .and_then(|t| t.services.get(i).filter(|p| *p.name == *svc.name).or_else(|| t.service(&svc.name)));
                match prev {
                    Some(p) if p.unchanged(svc, traffic, settings) => p.clone(),
                    _ => {
                        let route = Arc::new(ServiceRoute::build(svc, traffic, prev, settings));
                        fresh.push(route.clone());
                        route
                    }
                }
            })
            .collect();
        let unrouted = previous.map_or_else(|| Arc::new(StatusCounters::new("-", "-")), |t| t.unrouted.clone());
        let preview_key = previous.and_then(|t| t.preview_key.clone());
        RoutingTable {
            services: Slots::new(services),
            index: Index::of(config, previous),
            settings,
            generation,
            unrouted,
            preview_key,
            fresh,
        }
    }

    /// A copy in which service `svc` runs at `traffic`, every other service shared
    /// as it is: the cost of a switch does not grow with the number of services.
    /// `None` when this table has no service of that name.
    pub fn with_service(&self, svc: &Arc<Service>, traffic: &Traffic) -> Option<RoutingTable> {
        let at = self.position(&svc.name)?;
        let prev = self.services.get(at)?;
        let route = Arc::new(ServiceRoute::build(svc, Some(traffic), Some(prev), self.settings));
        Some(RoutingTable {
            services: self.services.with(at, route.clone())?,
            index: self.index.clone(),
            settings: self.settings,
            generation: self.generation,
            unrouted: self.unrouted.clone(),
            preview_key: self.preview_key.clone(),
            fresh: vec![route],
        })
    }

    /// A table that routes nothing (every request gets 404).
    pub fn empty() -> RoutingTable {
        RoutingTable {
            services: Slots::new(Vec::new()),
            index: Arc::default(),
            settings: ConnSettings { shards: 1, cap: 0 },
            generation: 0,
            unrouted: Arc::new(StatusCounters::new("-", "-")),
            preview_key: None,
            fresh: Vec::new(),
        }
    }

    /// The routes built for this table, to `activate` once it is in service.
    pub(crate) fn take_fresh(&mut self) -> Vec<Arc<ServiceRoute>> {
        std::mem::take(&mut self.fresh)
    }

    /// The service for a `Host` value (case-insensitive, port ignored), else the catch-all.
    pub fn route(&self, host: &[u8]) -> Option<&Arc<ServiceRoute>> {
        let idx = pick::with_host_key(host, |key| self.index.by_host.get(key).copied());
        idx.or(self.index.catch_all).and_then(|i| self.services.get(i))
    }

    /// The service of that name.
    pub fn service(&self, name: &str) -> Option<&Arc<ServiceRoute>> {
        self.position(name).and_then(|i| self.services.get(i))
    }

    /// Where the service of that name is, in config order.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.by_name.get(name).copied()
    }

    /// All services, in config order.
    pub fn services(&self) -> impl ExactSizeIterator<Item = &Arc<ServiceRoute>> + Clone {
        self.services.iter()
    }

    /// Sets the key preview tokens are checked with (kept by later tables built from this one).
    pub fn set_preview_key(&mut self, key: Arc<PreviewKey>) {
        self.preview_key = Some(key);
    }

    /// This table with another preview token key (every route shared).
    pub fn with_preview_key(&self, key: Arc<PreviewKey>) -> RoutingTable {
        RoutingTable {
            services: self.services.share(),
            index: self.index.clone(),
            settings: self.settings,
            generation: self.generation,
            unrouted: self.unrouted.clone(),
            preview_key: Some(key),
            fresh: Vec::new(),
        }
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
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnSettings {
    /// Idle stacks per backend: one per worker thread.
    pub(crate) shards: usize,
    /// `max_upstream_connections` (0 = no limit).
    pub(crate) cap: usize,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(middle_backend: &str) -> Config {
        let mut text = String::from("[listener]\naddress = \"127.0.0.1:0\"\n");
        for (i, b) in ["127.0.0.1:1", middle_backend, "127.0.0.1:3"].iter().enumerate() {
            text.push_str(&format!(
                "[[service]]\nname = \"s{i}\"\nhosts = [\"s{i}.test\"]\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{b}\"]\n[service.pools.green]\nbackends = [\"127.0.0.1:9\"]\n"
            ));
        }
        switchyard_config::parse(&text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn a_switch_rebuilds_one_route_and_shares_every_other() {
        let c = config("127.0.0.1:2");
        let a = RoutingTable::build(&c, None, 1);
        let green = Traffic::all_to("green", ["blue", "green"]);
        let b = a.with_service(&c.services[1], &green).unwrap();
        let (old, new) = (a.service("s1").unwrap(), b.service("s1").unwrap());
        assert!(!Arc::ptr_eq(old, new));
        assert_eq!(new.pools[1].weight, switchyard_config::Weight::FULL);
        assert!(Arc::ptr_eq(&old.pools[0].backends[0], &new.pools[0].backends[0]), "backend state carries over");
        assert!(Arc::ptr_eq(&old.pools[0].stats, &new.pools[0].stats), "counters carry over");
        for s in ["s0", "s2"] {
            assert!(Arc::ptr_eq(a.service(s).unwrap(), b.service(s).unwrap()));
        }
        assert!(Arc::ptr_eq(&a.index, &b.index), "the host index is shared");
        assert_eq!(b.route(b"S1.test:80").map(|s| &*s.name), Some("s1"));
        assert!(b.with_service(&config("x:1").services[0], &green).is_some());
    }

    #[test]
    fn a_drained_pool_is_retired_once_published_and_gets_its_connections_back_on_a_switch_back() {
        let c = config("127.0.0.1:2");
        let (publisher, _router) = crate::routes::channel(RoutingTable::build(&c, None, 1));
        let blue_conns = publisher.current().service("s1").unwrap().pools[0].conns[0].clone();
        let (green, blue) = (Traffic::all_to("green", ["blue", "green"]), Traffic::all_to("blue", ["blue", "green"]));
        let next = publisher.current().with_service(&c.services[1], &green).unwrap();
        assert!(blue_conns.closes_at().is_none(), "an unpublished change (it may still fail) retires nothing");
        publisher.publish(next);
        assert!(blue_conns.closes_at().is_some(), "blue's connections start their grace once published");
        let s1 = publisher.current().service("s1").unwrap().clone();
        assert!(!Arc::ptr_eq(&s1.pools[0].conns[0], &blue_conns), "blue serves from fresh stacks meanwhile");
        publisher.publish(publisher.current().with_service(&c.services[1], &blue).unwrap());
        let s1 = publisher.current().service("s1").unwrap().clone();
        assert!(Arc::ptr_eq(&s1.pools[0].conns[0], &blue_conns), "a switch back within the grace gets them back");
        assert!(blue_conns.closes_at().is_none(), "and they stay open");
    }

    #[test]
    fn a_reload_keeps_unchanged_routes_whole_and_rebuilds_the_edited_one() {
        let a = RoutingTable::build(&config("127.0.0.1:2"), None, 1);
        let b = RoutingTable::build(&config("127.0.0.1:7"), Some(&a), 2);
        for s in ["s0", "s2"] {
            assert!(Arc::ptr_eq(a.service(s).unwrap(), b.service(s).unwrap()), "{s} is not touched");
        }
        let (old, new) = (a.service("s1").unwrap(), b.service("s1").unwrap());
        assert!(!Arc::ptr_eq(old, new));
        assert_eq!(new.pools[0].backends[0].address(), "127.0.0.1:7");
        assert!(Arc::ptr_eq(&old.pools[1].backends[0], &new.pools[1].backends[0]), "unchanged pool keeps its backend");
        assert!(Arc::ptr_eq(&old.pools[0].stats, &new.pools[0].stats));
        assert_eq!(b.generation(), 2);
        assert!(Arc::ptr_eq(&a.index, &b.index), "same names and hosts: same index");
        let mut moved = config("127.0.0.1:7");
        Arc::make_mut(&mut moved.services[2]).hosts = vec!["s1.test".into()];
        Arc::make_mut(&mut moved.services[1]).hosts = vec!["s2.test".into()];
        let c = RoutingTable::build(&moved, Some(&b), 3);
        assert!(!Arc::ptr_eq(&b.index, &c.index));
        assert_eq!(c.route(b"s1.test").map(|s| &*s.name), Some("s2"));
    }
}
