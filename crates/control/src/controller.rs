//! The control task's logic: every change is validated, built into a new table,
//! written to the journal, published, synced, then answered — in that order, or
//! not at all (a sync that fails takes the publish back).

use crate::command::{ChangeMeta, Command, ControlError, PreviewTokenView, Reply};
use crate::health::HealthChecks;
use crate::merge::{Changes, merge, traffic_of};
use crate::preview_key;
use crate::state::{Event, Kind, ServiceState, State, StateError};
use crate::store::{Change, Store};
use crate::view::{ReloadOutcome, ServiceView, ServicesView};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;
use switchyard_config::{Config, Traffic, Weight};
use switchyard_proxy::preview::{self, PreviewKey};
use switchyard_proxy::tls::{self, TlsSettings};

use switchyard_proxy::{Router, RoutesPublisher, RoutingTable};

/// How long a change waits for connections to a pool gaining weight before it is
/// published anyway (a loopback or LAN connect takes well under a millisecond; a
/// blackholed backend must not hold a switch or a rollback).
const WARM_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Owns the traffic state and the snapshot's write side.
pub struct Controller {
    pub(crate) config: Arc<Config>,
    pub(crate) state: State,
    /// The state file and its journal.
    store: Store,
    pub(crate) publisher: RoutesPublisher,
    pub(crate) generation: u64,
    pub(crate) last_reload: Option<ReloadOutcome>,
    health: HealthChecks,
    pub(crate) preview_key: Arc<PreviewKey>,
    pub(crate) tls: Option<TlsSettings>,
    /// Whether `SWITCHYARD_ADMIN_TOKEN` stands in for `token_file`.
    pub(crate) env_token: bool,
    /// The address the admin API actually listens on, once known.
    pub(crate) admin_bound: Option<std::net::SocketAddr>,
    /// The step clocks of running rollouts (memory only).
    pub(crate) clocks: HashMap<String, crate::rollout_ctl::Clock>,
    /// The latest sampler tick handled.
    pub(crate) last_tick: u64,
    /// The sampler's ticks as published (ahead of `last_tick` while ticks wait in the mailbox).
    pub(crate) ticks: Option<tokio::sync::watch::Receiver<u64>>,
    /// Cluster mode: the shared store and what this replica took from it.
    pub(crate) shared: Option<crate::shared_apply::Shared>,
    /// Changes applied and not logged yet (`log_applied`, once the caller has its
    /// answer: waking the log thread is kept off the way to the publish).
    unlogged: Vec<(String, Arc<Event>)>,
}

/// Why the control path could not start. Each message names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state file is unreadable, corrupt or unwritable.
    #[error(transparent)]
    State(#[from] StateError),
    /// The preview token key could not be read or created.
    #[error("{0}")]
    PreviewKey(String),
    /// The TLS certificate or key does not load.
    #[error("TLS: {0}")]
    Tls(String),
    /// The saved runtime traffic gives weight to a pool the config no longer has.
    #[error("state file {path}: {problems} (restore the pool, or start with --reset-state)", path = .path.display(), problems = .problems.join("; "))]
    Conflict {
        /// The state file.
        path: std::path::PathBuf,
        /// One line per service.
        problems: Vec<String>,
    },
}

/// Now, as RFC 3339 (UTC, seconds).
pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Controller {
    /// Loads the state file (or starts fresh with `reset_state`), reconciles it with
    /// the config, persists the result and publishes the first table.
    pub fn start(mut config: Config, reset_state: bool) -> Result<(Controller, Router), StartError> {
        let (mut store, saved) = if reset_state {
            (Store::fresh(&config.state.file), State::default())
        } else {
            Store::open(&config.state.file)?
        };
        if config.cluster.is_some() {
            // The store holds the traffic: an edited [traffic] is not a change here.
            for w in crate::shared_apply::keep_traffic(&mut config, &saved) {
                tracing::warn!("{w}");
            }
        }
        let mut state = merge(&config, &saved)
            .map_err(|problems| StartError::Conflict { path: config.state.file.clone(), problems })?;
        Controller::resume_after_restart(&mut state);
        store.save_all(&state)?;
        store.remove_stale_journals();
        let preview_key = preview_key::load_or_create(&config).map_err(StartError::PreviewKey)?;
        let tls = match &config.listener.tls {
            None => None,
            Some(t) => Some(tls::settings(tls::load(&t.cert, &t.key).map_err(StartError::Tls)?)),
        };
        let mut table = RoutingTable::build_with(&config, |svc| Some(traffic_of(&state, svc)), None, 1);
        table.set_preview_key(preview_key.clone());
        let (publisher, router) = switchyard_proxy::channel(table);
        let mut c = Controller {
            config: Arc::new(config),
            state,
            store,
            publisher,
            generation: 1,
            last_reload: None,
            health: HealthChecks::new(),
            preview_key,
            tls,
            env_token: false,
            admin_bound: None,
            clocks: Default::default(),
            last_tick: 0,
            ticks: None,
            shared: None,
            unlogged: Vec::new(),
        };
        // What the saved history already counted is not counted again (no replay on restart).
        c.observe_start(&saved);
        c.log_applied();
        c.stamp_last_changes();
        drop(saved);
        crate::heap::trim();
        Ok((c, router))
    }

    /// Says whether `SWITCHYARD_ADMIN_TOKEN` stands in for `token_file` (a reload
    /// may never leave a non-loopback admin API without any token), and which
    /// address the admin API actually listens on (a restart-only setting).
    pub fn set_admin(&mut self, bound: std::net::SocketAddr, env_token: bool) {
        self.admin_bound = Some(bound);
        self.env_token = env_token;
    }

    /// `last_change_timestamp_seconds` from each service's latest saved event.
    fn stamp_last_changes(&self) {
        for (name, st) in &self.state.services {
            let at = st.history.last().and_then(|e| humantime::parse_rfc3339(&e.at).ok());
            if let Some(d) = at.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()) {
                switchyard_metrics::last_change(name, d.as_secs_f64());
            }
        }
    }

    /// Applies one command. In cluster mode a change that lost a race to another
    /// replica's is checked again against what won (`If-Match`, gates) and retried.
    pub fn apply(&mut self, cmd: Command) -> Result<Reply, ControlError> {
        self.log_applied();
        for _ in 1..crate::shared_apply::RACE_RETRIES {
            match self.apply_once(cmd.clone()) {
                Err(ControlError::Raced) => continue,
                other => return other,
            }
        }
        match self.apply_once(cmd) {
            Err(ControlError::Raced) => {
                Err(ControlError::Conflict("the service kept changing under this change; try again".into()))
            }
            other => other,
        }
    }

    fn apply_once(&mut self, cmd: Command) -> Result<Reply, ControlError> {
        match cmd {
            Command::Switch { service, pool, meta } => {
                let svc = self.service_config(&service)?;
                if svc.pool(&pool).is_none() {
                    return Err(unknown_pool(&self.config, &service, &pool));
                }
                let target = Traffic::all_to(&pool, svc.pools.iter().map(|p| p.name.as_str()));
                self.change(&service, Kind::Switch, target, meta)
            }
            Command::SetWeights { service, weights, meta } => {
                let target = self.weights_target(&service, weights)?;
                self.change(&service, Kind::Weights, target, meta)
            }
            Command::Rollback { service, meta } => self.rollback(&service, meta),
            Command::Reload { source } => self.reload(source),
            Command::Services => Ok(Reply::Services(self.services_view())),
            Command::Service(name) => self.view(&name).map(Reply::Service),
            Command::PreviewToken { service, pool, ttl } => self.preview_token(&service, &pool, ttl),
            Command::RolloutPlan { service, pool, settings } => self.rollout_plan(&service, &pool, &settings),
            Command::RolloutStart { service, pool, settings, meta } => {
                self.rollout_start(&service, &pool, *settings, meta)
            }
            Command::RolloutControl { service, action, meta } => self.rollout_control(&service, action, meta),
            Command::Rollout(service) => self.rollout_get(&service),
            Command::Tick(tick) => {
                self.tick(tick);
                Ok(Reply::Ticked)
            }
            Command::ClusterSync(sync) => self.sync(sync),
            Command::History(name) => {
                self.service_config(&name)?;
                let st = self.service_state(&name)?;
                Ok(Reply::History(st.history.iter().rev().map(|e| Event::clone(e)).collect()))
            }
        }
    }

    pub(crate) fn service_config(&self, name: &str) -> Result<&Arc<switchyard_config::Service>, ControlError> {
        // The table's name index (same order as the config): no scan of every service.
        let at = self.publisher.current().position(name);
        at.and_then(|i| self.config.services.get(i))
            .filter(|s| s.name == name)
            .ok_or_else(|| ControlError::UnknownService(name.into()))
    }

    pub(crate) fn service_state(&self, name: &str) -> Result<&ServiceState, ControlError> {
        self.state.services.get(name).ok_or_else(|| ControlError::UnknownService(name.into()))
    }

    fn weights_target(&self, service: &str, weights: BTreeMap<String, Weight>) -> Result<Traffic, ControlError> {
        let svc = self.service_config(service)?;
        if let Some(bad) = weights.keys().find(|p| svc.pool(p).is_none()) {
            return Err(unknown_pool(&self.config, service, bad));
        }
        let sum: u32 = weights.values().map(|w| w.0).sum();
        if sum != Weight::FULL.0 {
            return Err(ControlError::BadRequest(format!("weights add up to {}, not 100", Weight(sum))));
        }
        Ok(Traffic(
            svc.pools.iter().map(|p| (p.name.clone(), weights.get(&p.name).copied().unwrap_or_default())).collect(),
        ))
    }

    /// The health gate: a pool may only gain traffic with `min_healthy` healthy backends.
    pub(crate) fn gate(&self, service: &str, from: &Traffic, to: &Traffic, force: bool) -> Result<(), ControlError> {
        if force {
            return Ok(());
        }
        let min = self.service_config(service)?.min_healthy;
        let table = self.publisher.current();
        let Some(route) = table.service(service) else {
            return Ok(());
        };
        for pool in route.pools.iter() {
            let (before, after) = (from.weight(&pool.name), to.weight(&pool.name));
            let healthy = pool.healthy_count();
            if after > before && healthy < min as usize {
                return Err(ControlError::Gate { service: service.into(), pool: pool.name.to_string(), healthy, min });
            }
        }
        Ok(())
    }

    pub(crate) fn check_version(&self, service: &str, meta: &ChangeMeta) -> Result<(), ControlError> {
        let actual = self.service_state(service)?.version;
        match meta.if_match {
            Some(expected) if expected != actual => {
                Err(ControlError::VersionMismatch { service: service.into(), expected, actual })
            }
            _ => Ok(()),
        }
    }

    fn change(&mut self, service: &str, kind: Kind, target: Traffic, meta: ChangeMeta) -> Result<Reply, ControlError> {
        self.check_version(service, &meta)?;
        let current = self.service_state(service)?.traffic.clone();
        if current == target {
            // Nothing moves, but the operator took over: a running rollout stops.
            if self.service_state(service)?.running().is_some() {
                let mut st = self.service_state(service)?.clone();
                cancelling(&mut st, kind, meta);
                self.commit_service(service, st)?;
            }
            return self.view(service).map(Reply::Service);
        }
        self.gate(service, &current, &target, meta.force)?;
        let mut st = self.service_state(service)?.clone();
        st.undo.push(Arc::new(current.clone()));
        let meta = cancelling(&mut st, kind, meta);
        record(&mut st, kind, current, target, meta);
        self.commit_service(service, st)?;
        self.view(service).map(Reply::Service)
    }

    fn rollback(&mut self, service: &str, meta: ChangeMeta) -> Result<Reply, ControlError> {
        self.check_version(service, &meta)?;
        let mut st = self.service_state(service)?.clone();
        let current = st.traffic.clone();
        let Some(at) = st.rollback_index() else {
            return Err(ControlError::NothingToRollBack(service.into()));
        };
        // The target and the no-op entries after it leave the stack.
        let target = Arc::unwrap_or_clone(st.undo.split_off(at).swap_remove(0));
        self.gate(service, &current, &target, meta.force)?;
        let meta = cancelling(&mut st, Kind::Rollback, meta);
        record(&mut st, Kind::Rollback, current, target, meta);
        self.commit_service(service, st)?;
        self.view(service).map(Reply::Service)
    }

    fn preview_token(&self, service: &str, pool: &str, ttl: std::time::Duration) -> Result<Reply, ControlError> {
        let svc = self.service_config(service)?;
        if svc.pool(pool).is_none() {
            return Err(unknown_pool(&self.config, service, pool));
        }
        let (min, max) = preview::TTL_RANGE;
        if ttl < min || ttl > max {
            return Err(ControlError::BadRequest("ttl must be between 1s and 30d".into()));
        }
        let expires = preview::now() + ttl.as_secs();
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(expires);
        Ok(Reply::PreviewToken(PreviewTokenView {
            token: self.preview_key.issue(service, pool, expires),
            pool: pool.into(),
            expires_at: humantime::format_rfc3339_seconds(at).to_string(),
        }))
    }

    /// The TLS listener's live settings, when `[listener.tls]` is configured.
    pub fn tls(&self) -> Option<TlsSettings> {
        self.tls.clone()
    }

    /// One service's change: in cluster mode, commit it to the store first; then
    /// build its route (sharing every other service's) → write it to the journal →
    /// publish → sync (`commit_local`). Any failure leaves everything as it was. Costs the same
    /// whatever the number of services.
    pub(crate) fn commit_service(&mut self, service: &str, next: ServiceState) -> Result<(), ControlError> {
        if self.clustered() {
            let before = self.service_state(service)?.clone();
            let was = match self.commit_shared(service, &before, &next) {
                // Safety first: a rollout's automatic rollback is applied here at
                // once and committed when the store is back.
                Err(ControlError::StoreDown(why)) if crate::shared_apply::is_auto_rollback(&before, &next) => {
                    return self.commit_pending(service, next, &why);
                }
                other => other?,
            };
            let version = next.version;
            if let Err(e) = self.commit_local(service, next) {
                // Every other replica applies it; this one will from the store.
                self.unapplied(service, was);
                return Err(ControlError::Persist(format!(
                    "committed to the cluster store as version {version}, but not applied on this replica yet: {e}"
                )));
            }
            self.applied_here(service, version);
            self.publish_applied();
            return Ok(());
        }
        self.commit_local(service, next)
    }

    /// The local part of a commit: route, journal write, publish, journal sync.
    /// The record is written (on ext4, xfs and tmpfs what a user can get wrong —
    /// folder, permissions, a full disk — fails here, and then nothing is applied)
    /// before the table is published, and synced after it, so the fsync is not on
    /// the path to the first request the change routes; the caller answers only
    /// once it is synced. Should the sync fail, the record is cut and the previous
    /// traffic published again; until a sync succeeds again, changes are synced
    /// before they are published (a retried rollback must not flap).
    pub(crate) fn commit_local(&mut self, service: &str, next: ServiceState) -> Result<(), ControlError> {
        let persist = |e: StateError| ControlError::Persist(e.to_string());
        let before = self.state.services.get(service).ok_or_else(|| ControlError::UnknownService(service.into()))?;
        let table = if next.traffic == before.traffic {
            None
        } else {
            let svc = self.service_config(service)?;
            let table = self.publisher.current().with_service(svc, &next.traffic);
            Some(table.ok_or_else(|| ControlError::UnknownService(service.into()))?)
        };
        // Connections to a pool gaining weight open on the workers while the change is written.
        let warming = table.as_ref().map(|t| self.publisher.warm(t, service));
        if self.store.unsure() {
            self.store.save_all(&self.state).map_err(persist)?;
        }
        self.store.write_one(service, before, &next).map_err(persist)?;
        if self.store.sync_failing() {
            self.store.sync().map_err(persist)?;
        }
        let published = table.is_some();
        if let Some(table) = table {
            if let Some(w) = warming {
                let started = std::time::Instant::now();
                let (opened, wanted) = w.wait(WARM_WAIT);
                if wanted > 0 {
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    tracing::debug!(service, opened, wanted, waited_ms = ms, "warmed the pools gaining traffic");
                }
            }
            self.publisher.publish(table);
        }
        if let Err(e) = self.store.sync() {
            if published {
                self.unpublish(service);
            }
            return Err(persist(e));
        }
        let before = self.state.services.insert(service.to_owned(), next);
        self.observe_service(service, before.as_ref());
        self.snapshot_if_due();
        Ok(())
    }

    /// Publishes `service` at the traffic its state holds again (a change whose
    /// journal record could not be synced).
    fn unpublish(&mut self, service: &str) {
        let (Ok(svc), Some(st)) = (self.service_config(service), self.state.services.get(service)) else { return };
        match self.publisher.current().with_service(svc, &st.traffic) {
            Some(table) => self.publisher.publish(table),
            None => tracing::error!(service, "cannot publish the traffic back after a failed state sync"),
        }
        tracing::error!(service, "the state file could not be synced: the change is taken back");
    }

    /// A new config (reload): build every route whose config or traffic changed
    /// (reusing the others) → append the services whose state changed to the
    /// journal as one record → publish. Any failure leaves everything as it was.
    /// `preview_key` is put in service only on success.
    pub(crate) fn commit_all(
        &mut self,
        config: Config,
        changes: Changes,
        generation: u64,
        preview_key: Arc<PreviewKey>,
    ) -> Result<(), ControlError> {
        let persist = |e: StateError| ControlError::Persist(e.to_string());
        let current = self.publisher.current();
        let set: HashMap<&str, &ServiceState> = changes.set.iter().map(|(n, st)| (n.as_str(), st)).collect();
        let mut table = RoutingTable::build_with(
            &config,
            // A service the reload leaves as it was runs on at the weights it has.
            |svc| set.get(svc.name.as_str()).map(|st| &st.traffic),
            Some(&current),
            generation,
        );
        table.set_preview_key(preview_key.clone());
        let journal: Vec<Change> = changes
            .set
            .iter()
            .map(|(name, st)| match self.state.services.get(name) {
                Some(before) => crate::store::update(name, before, st),
                None => Change::Add { service: name.clone(), state: Box::new(st.clone()) },
            })
            .chain(changes.removed.iter().map(|name| Change::Remove { service: name.clone() }))
            .collect();
        if !journal.is_empty() {
            if self.store.unsure() {
                self.store.save_all(&self.state).map_err(persist)?;
            }
            self.store.append(journal).map_err(persist)?;
        }
        drop(set);
        self.publisher.publish(table);
        self.preview_key = preview_key;
        self.config = Arc::new(config);
        self.generation = generation;
        for name in &changes.removed {
            self.state.services.remove(name);
        }
        for (name, st) in changes.set {
            let before = self.state.services.insert(name.clone(), st);
            self.observe_service(&name, before.as_ref());
        }
        switchyard_metrics::generation(self.generation);
        let table = self.publisher.current();
        self.health.reconcile(&table, &self.config);
        self.snapshot_if_due();
        Ok(())
    }

    /// Folds the journal into a new snapshot once it has grown enough.
    fn snapshot_if_due(&mut self) {
        if self.store.wants_snapshot()
            && let Err(e) = self.store.save_all(&self.state)
        {
            // The changes themselves are safe in the journal; the next commit tries again.
            tracing::warn!("cannot fold the state journal into a new snapshot: {e}");
        }
    }

    /// At start: `observe_service` for every service against what was saved, the
    /// generation, and health probes for the table's backends.
    fn observe_start(&mut self, saved: &State) {
        let names: Vec<String> = self.state.services.keys().cloned().collect();
        for name in names {
            self.observe_service(&name, saved.services.get(&name));
        }
        switchyard_metrics::generation(self.generation);
        let table = self.publisher.current();
        self.health.reconcile(&table, &self.config);
    }

    /// After a change of one service: metrics for what changed since `before`, and
    /// its log lines queued for `log_applied`.
    fn observe_service(&mut self, service: &str, before: Option<&ServiceState>) {
        let Some(st) = self.state.services.get(service) else { return };
        let old_version = before.map_or(0, |s| s.version);
        let new_events = st.history.iter().filter(|e| e.version > old_version);
        let mut now = None;
        for e in new_events {
            let at = *now.get_or_insert_with(|| {
                SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
            });
            switchyard_metrics::traffic_change(service, e.kind.as_str(), at);
            self.unlogged.push((service.to_owned(), e.clone()));
        }
        crate::rollout_ctl::observe(service, before, st);
    }

    /// Logs the changes applied since the last call. The control thread calls it
    /// once the change's caller has its answer; `apply` and `start` call it too.
    pub fn log_applied(&mut self) {
        for (service, e) in self.unlogged.drain(..) {
            tracing::info!(
                service,
                kind = e.kind.as_str(),
                version = e.version,
                actor = %e.actor,
                from = %e.from,
                to = %e.to,
                "traffic changed"
            );
        }
    }

    pub(crate) fn view(&self, service: &str) -> Result<ServiceView, ControlError> {
        let st = self.service_state(service)?;
        let table = self.publisher.current();
        let route = table.service(service).ok_or_else(|| ControlError::UnknownService(service.into()))?;
        Ok(ServiceView::new(st, route))
    }

    fn services_view(&self) -> ServicesView {
        let services = self.config.services.iter().filter_map(|s| self.view(&s.name).ok()).collect();
        ServicesView { generation: self.generation, last_reload: self.last_reload.clone(), services }
    }

    /// Health probes for exactly the backends of `table`.
    pub(crate) fn reconcile_health(&mut self, table: &RoutingTable) {
        self.health.reconcile(table, &self.config);
    }

    /// The config in force (as the file said at the last successful apply).
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }
}

/// A manual change cancels the running rollout and says so in its reason.
fn cancelling(st: &mut ServiceState, kind: Kind, mut meta: ChangeMeta) -> ChangeMeta {
    let why = format!("a manual {} by {}", kind.as_str(), meta.actor);
    if let Some(id) = crate::rollout_ctl::cancel(st, &why) {
        meta.reason = if meta.reason.is_empty() {
            format!("cancelled rollout {id}")
        } else {
            format!("{}; cancelled rollout {id}", meta.reason)
        };
    }
    meta
}

/// Appends an event for a change from `from` to `to`, bumping the version (it is
/// logged once applied: `Controller::log_applied`).
pub(crate) fn record(st: &mut ServiceState, kind: Kind, from: Traffic, to: Traffic, meta: ChangeMeta) {
    st.version += 1;
    st.traffic = to.clone();
    let event = Event {
        version: st.version,
        at: now(),
        kind,
        from,
        to,
        actor: meta.actor,
        reason: meta.reason,
        forced: meta.force,
    };
    st.record(event);
}

impl Controller {
    /// 404 for a pool the service does not have.
    pub(crate) fn unknown_pool(&self, service: &str, pool: &str) -> ControlError {
        unknown_pool(&self.config, service, pool)
    }
}

fn unknown_pool(config: &Config, service: &str, pool: &str) -> ControlError {
    let known = config.service(service).map(|s| s.pools.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "));
    ControlError::UnknownPool { service: service.into(), pool: pool.into(), known: known.unwrap_or_default() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "controller_tests.rs"]
mod tests;
