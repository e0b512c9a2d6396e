//! Progressive rollouts on the control thread (SPEC §9): start, the per-second
//! tick that judges and advances, operator control, and cancellation. Every
//! weight change is a normal commit — gated (except the return to the
//! pre-rollout traffic), versioned, persisted, in history with its figures.

use crate::command::{ChangeMeta, ControlError, Reply, SmokePlan};
use crate::controller::{Controller, now, record};
use crate::judge::{self, Sample, Verdict};
use crate::rollout::{AnalysisView, Phase, Rollout};
use crate::state::{Kind, ServiceState};
use std::time::{Duration, SystemTime};
use switchyard_config::{OnInconclusive, RolloutSettings, Traffic, Weight};

/// An operator's command to a running rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutAction {
    /// Freeze the weights.
    Pause,
    /// Go on; the current step's clock and window start again.
    Resume,
    /// Back to the pre-rollout traffic.
    Abort,
    /// 100 % to the canary now.
    Promote,
}

impl RolloutAction {
    /// From the URL segment.
    pub fn parse(s: &str) -> Option<RolloutAction> {
        Some(match s {
            "pause" => RolloutAction::Pause,
            "resume" => RolloutAction::Resume,
            "abort" => RolloutAction::Abort,
            "promote" => RolloutAction::Promote,
            _ => return None,
        })
    }
}

/// The clock of a running rollout's current step, in sampler ticks (seconds).
/// Kept in memory only: after a restart the step starts afresh.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// The tick the step started at; its window starts `warmup` later.
    step_tick: u64,
    /// The tick of the next analysis.
    next_analysis: u64,
}

/// Whole seconds, at least `min`.
fn secs(d: Duration, min: u64) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)).max(min)
}

/// RFC 3339 time `offset` from now (durations are capped by the config, so
/// this stays within what RFC 3339 can say).
fn at(offset: Duration) -> String {
    let when = SystemTime::now().checked_add(offset).unwrap_or_else(SystemTime::now);
    humantime::format_rfc3339_seconds(when).to_string()
}

/// Marks the running rollout of `st` cancelled; its id when there was one.
pub(crate) fn cancel(st: &mut ServiceState, why: &str) -> Option<String> {
    let r = st.rollout.as_mut().filter(|r| r.phase.is_running())?;
    end(r, Phase::Cancelled, format!("cancelled: {why}"));
    Some(r.id.clone())
}

fn end(r: &mut Rollout, phase: Phase, message: String) {
    r.phase = phase;
    r.message = message;
    r.ended_at = Some(now());
    r.next_step_at = None;
}

/// Traffic with the canary at `w` and the baseline taking the rest; others keep theirs.
fn step_traffic(from: &Traffic, canary: &str, baseline: &str, w: Weight) -> Option<Traffic> {
    if w == Weight::FULL {
        return Some(Traffic(from.0.keys().map(|p| (p.clone(), if p == canary { w } else { Weight::ZERO })).collect()));
    }
    let others: u32 = from.0.iter().filter(|(p, _)| *p != canary && *p != baseline).map(|(_, w)| w.0).sum();
    let rest = Weight::FULL.0.checked_sub(w.0)?.checked_sub(others)?;
    let mut t = from.clone();
    t.0.insert(canary.to_owned(), w);
    t.0.insert(baseline.to_owned(), Weight(rest));
    Some(t)
}

impl Controller {
    /// Checks a start and says where the smoke requests go. Nothing changes.
    pub(crate) fn rollout_plan(
        &self,
        service: &str,
        pool: &str,
        settings: &RolloutSettings,
    ) -> Result<Reply, ControlError> {
        self.plan(service, pool, settings)?;
        let svc = self.service_config(service)?;
        let p = svc.pool(pool).ok_or_else(|| self.unknown_pool(service, pool))?;
        Ok(Reply::SmokePlan(SmokePlan {
            backends: p.addresses().cloned().collect(),
            protocol: p.protocol,
            host: svc.health.as_ref().and_then(|h| h.host.clone()),
            timeout: svc.health.as_ref().map_or(svc.timeouts.connect + svc.timeouts.request, |h| h.timeout),
            smoke: settings.smoke.clone(),
        }))
    }

    /// The baseline, the steps left and the first step's traffic, or why not.
    fn plan(
        &self,
        service: &str,
        pool: &str,
        s: &RolloutSettings,
    ) -> Result<(String, Vec<Weight>, Traffic), ControlError> {
        let svc = self.service_config(service)?;
        if svc.pool(pool).is_none() {
            return Err(self.unknown_pool(service, pool));
        }
        let st = self.service_state(service)?;
        if let Some(r) = st.running() {
            return Err(ControlError::Conflict(format!(
                "service \"{service}\" already has rollout {} {} (pool \"{}\"); pause, abort or promote it first",
                r.id,
                r.phase.as_str(),
                r.pool
            )));
        }
        let current = st.traffic.weight(pool);
        // The heaviest other pool; ties go to the first in the file.
        let baseline = svc
            .pools
            .iter()
            .filter(|p| p.name != pool)
            .fold(None::<(&str, Weight)>, |best, p| {
                let w = st.traffic.weight(&p.name);
                match best {
                    Some((_, bw)) if bw >= w => best,
                    _ => Some((p.name.as_str(), w)),
                }
            })
            .map(|(name, _)| name.to_owned())
            .ok_or_else(|| ControlError::Conflict(format!("service \"{service}\" has no pool besides \"{pool}\"")))?;
        let steps: Vec<Weight> = s.steps.iter().copied().filter(|w| *w > current).collect();
        if steps.len() < 2 {
            return Err(ControlError::Conflict(format!(
                "pool \"{pool}\" already has {current}%: no step below 100 is left to judge"
            )));
        }
        let mut first = None;
        for w in &steps {
            let t = step_traffic(&st.traffic, pool, &baseline, *w).ok_or_else(|| {
                ControlError::Conflict(format!(
                    "step {w}% does not fit: pools other than \"{pool}\" and \"{baseline}\" hold the rest"
                ))
            })?;
            first.get_or_insert(t);
        }
        let first = first.ok_or_else(|| ControlError::BadRequest("no steps".into()))?;
        Ok((baseline, steps, first))
    }

    /// Starts a rollout (the smoke requests already passed): the first step is in
    /// force when this returns.
    pub(crate) fn rollout_start(
        &mut self,
        service: &str,
        pool: &str,
        settings: RolloutSettings,
        meta: ChangeMeta,
    ) -> Result<Reply, ControlError> {
        let (baseline, steps, first) = self.plan(service, pool, &settings)?;
        self.check_version(service, &meta)?;
        let from = self.service_state(service)?.traffic.clone();
        self.gate(service, &from, &first, false)?;
        let mut st = self.service_state(service)?.clone();
        st.undo.push(std::sync::Arc::new(from.clone()));
        let id = format!("{service}-{}", st.version + 1);
        let n = steps.len();
        let rollout = Rollout {
            id: id.clone(),
            pool: pool.into(),
            baseline,
            phase: Phase::Progressing,
            message: format!("step 1/{n}: {pool} at {}%, waiting for data", steps[0]),
            started_at: now(),
            ended_at: None,
            actor: meta.actor.clone(),
            reason: meta.reason.clone(),
            from: from.clone(),
            scope: "local".into(),
            weight: steps[0],
            steps,
            step: 0,
            step_started_at: now(),
            next_step_at: Some(at(settings.step_interval)),
            settings,
            analysis: AnalysisView::default(),
        };
        let mut reason = format!("rollout {id} started: step 1/{n}, {pool} at {}%", rollout.weight);
        if !meta.reason.is_empty() {
            reason = format!("{reason}; {}", meta.reason);
        }
        st.rollout = Some(Box::new(rollout));
        record(&mut st, Kind::RolloutStep, from, first, ChangeMeta { reason, ..meta });
        self.claim_start(service)?;
        self.commit_service(service, st)?;
        self.restart_clock(service);
        if let Some(stats) = self.pool_stats(service, pool) {
            stats.reset_error_run();
        }
        self.view(service).map(Reply::Service)
    }

    /// The rollout object: the running one, else the last one.
    pub(crate) fn rollout_get(&self, service: &str) -> Result<Reply, ControlError> {
        self.service_config(service)?;
        let st = self.service_state(service)?;
        let r = st.rollout.clone().ok_or_else(|| ControlError::NoRollout(service.into()))?;
        Ok(Reply::Rollout(r))
    }

    /// Pause, resume, abort or promote.
    pub(crate) fn rollout_control(
        &mut self,
        service: &str,
        action: RolloutAction,
        meta: ChangeMeta,
    ) -> Result<Reply, ControlError> {
        self.service_config(service)?;
        self.check_version(service, &meta)?;
        let st = self.service_state(service)?;
        let Some(r) = st.running() else {
            return Err(ControlError::Conflict(format!("service \"{service}\" has no rollout progressing or paused")));
        };
        let (id, phase) = (r.id.clone(), r.phase);
        let why = if meta.reason.is_empty() { String::new() } else { format!(": {}", meta.reason) };
        match action {
            RolloutAction::Pause | RolloutAction::Resume => {
                let (want, to) = match action {
                    RolloutAction::Pause => (Phase::Progressing, Phase::Paused),
                    _ => (Phase::Paused, Phase::Progressing),
                };
                if phase != want {
                    return Err(ControlError::Conflict(format!(
                        "rollout {id} is {}, not {}",
                        phase.as_str(),
                        want.as_str()
                    )));
                }
                let mut st = self.service_state(service)?.clone();
                let r = st.rollout.as_mut().ok_or_else(|| ControlError::NoRollout(service.into()))?;
                r.phase = to;
                if to == Phase::Paused {
                    r.message = format!("paused by {}{why}", meta.actor);
                    r.next_step_at = None;
                } else {
                    r.message =
                        format!("resumed by {}{why}; step {}/{} starts afresh", meta.actor, r.step + 1, r.steps.len());
                    r.step_started_at = now();
                    r.next_step_at = Some(at(r.settings.step_interval));
                    r.analysis = AnalysisView::default();
                }
                self.commit_service(service, st)?;
                if to == Phase::Progressing {
                    self.restart_clock(service);
                }
            }
            RolloutAction::Abort => {
                let reason = format!("rollout {id} aborted by {}{why}", meta.actor);
                self.return_to_start(service, Kind::RolloutAbort, Phase::Aborted, reason, meta.actor, None)?;
            }
            RolloutAction::Promote => {
                let r = st.running().cloned().ok_or_else(|| ControlError::NoRollout(service.into()))?;
                let last = r.steps.len() - 1;
                let reason = format!("rollout {id} promoted by {}{why}", meta.actor);
                self.step_to(service, &r, last, reason, meta.actor)?;
            }
        }
        self.view(service).map(Reply::Service)
    }

    /// Moves a running rollout to step `k`, through the gate. The last step ends it.
    fn step_to(
        &mut self,
        service: &str,
        r: &Rollout,
        k: usize,
        reason: String,
        actor: String,
    ) -> Result<(), ControlError> {
        let w = r.steps[k];
        let current = self.service_state(service)?.traffic.clone();
        let target = step_traffic(&current, &r.pool, &r.baseline, w)
            .ok_or_else(|| ControlError::Conflict(format!("step {w}% does not fit the traffic")))?;
        self.gate(service, &current, &target, false)?;
        let mut st = self.service_state(service)?.clone();
        let n = r.steps.len();
        if let Some(roll) = st.rollout.as_mut() {
            roll.step = k;
            roll.weight = w;
            roll.step_started_at = now();
            if w == Weight::FULL {
                end(roll, Phase::Promoted, reason.clone());
            } else {
                roll.phase = Phase::Progressing;
                roll.message = format!("step {}/{n}: {} at {w}%, waiting for data", k + 1, r.pool);
                roll.next_step_at = Some(at(r.settings.step_interval));
                roll.analysis = AnalysisView { consecutive_failures: 0, ..AnalysisView::default() };
            }
        }
        let meta = ChangeMeta { actor, reason, ..ChangeMeta::default() };
        record(&mut st, Kind::RolloutStep, current, target, meta);
        self.commit_service(service, st)?;
        self.restart_clock(service);
        Ok(())
    }

    /// Automatic rollback or abort: back to the traffic before the rollout,
    /// ungated, keeping the analysis that decided it when there was one.
    fn return_to_start(
        &mut self,
        service: &str,
        kind: Kind,
        phase: Phase,
        reason: String,
        actor: String,
        analysis: Option<AnalysisView>,
    ) -> Result<(), ControlError> {
        let mut st = self.service_state(service)?.clone();
        let current = st.traffic.clone();
        let Some(r) = st.rollout.as_mut().filter(|r| r.phase.is_running()) else {
            return Err(ControlError::NoRollout(service.into()));
        };
        let from = r.from.clone();
        end(r, phase, reason.clone());
        if let Some(a) = analysis {
            r.analysis = a;
        }
        // The rollout counted as one change; undoing it consumes its undo entry.
        if st.undo.last().map(|t| &**t) == Some(&from) {
            st.undo.pop();
        }
        if current != from {
            record(&mut st, kind, current, from, ChangeMeta { actor, reason, ..ChangeMeta::default() });
        }
        self.commit_service(service, st)?;
        self.clocks.remove(service);
        Ok(())
    }

    /// The step's clock starts at the next sample (the current second is partly
    /// before the change) — counted from the latest tick the sampler published,
    /// not the latest one handled, so ticks still waiting in the mailbox cannot
    /// make a new step look older than it is.
    fn restart_clock(&mut self, service: &str) {
        let Some(r) = self.state.services.get(service).and_then(ServiceState::running) else {
            self.clocks.remove(service);
            return;
        };
        let published = self.ticks.as_ref().map_or(0, |t| *t.borrow());
        let step_tick = self.last_tick.max(published) + 1;
        let next_analysis = step_tick.saturating_add(secs(r.settings.interval, 1));
        self.clocks.insert(service.to_owned(), Clock { step_tick, next_analysis });
    }

    fn pool_stats(&self, service: &str, pool: &str) -> Option<std::sync::Arc<switchyard_proxy::PoolStats>> {
        let table = self.publisher.current();
        table.service(service)?.pool(pool).map(|p| p.stats.clone())
    }

    /// One sampler tick: every running rollout checks fast-fail and, when due,
    /// judges its window and acts on the verdict.
    pub(crate) fn tick(&mut self, tick: u64) {
        self.last_tick = tick;
        self.adopt_orphans();
        // In cluster mode only the replica that started a rollout drives it (SPEC §8).
        let running: Vec<String> = self
            .state
            .services
            .iter()
            .filter(|(n, st)| st.running().is_some() && self.drives(n))
            .map(|(n, _)| n.clone())
            .collect();
        for service in running {
            if let Err(e) = self.rollout_tick(&service, tick) {
                tracing::warn!(%service, error = %e, "rollout step not applied");
            }
        }
    }

    fn rollout_tick(&mut self, service: &str, tick: u64) -> Result<(), ControlError> {
        let Some(r) = self.service_state(service)?.running().cloned() else { return Ok(()) };
        let s = &r.settings;
        let clock = *self
            .clocks
            .entry(service.to_owned())
            .or_insert(Clock { step_tick: tick, next_analysis: tick.saturating_add(secs(s.interval, 1)) });
        let (canary, baseline) = (self.pool_stats(service, &r.pool), self.pool_stats(service, &r.baseline));
        let fast = u64::from(s.analysis.fast_fail_errors);
        if let Some(c) = canary.as_ref().filter(|_| fast > 0) {
            let run = c.take_max_error_run();
            if run >= fast {
                let reason = format!(
                    "rollout {} rolled back: {run} consecutive 5xx from \"{}\" (fast_fail_errors = {fast})",
                    r.id, r.pool
                );
                tracing::warn!(%service, "{reason}");
                return self.return_to_start(
                    service,
                    Kind::AutoRollback,
                    Phase::RolledBack,
                    reason,
                    "rollout".into(),
                    None,
                );
            }
        }
        if tick < clock.next_analysis {
            return Ok(());
        }
        if let Some(c) = self.clocks.get_mut(service) {
            c.next_analysis = tick.saturating_add(secs(s.interval, 1));
        }
        let from = clock.step_tick.saturating_add(secs(s.warmup, 0));
        let window_s = tick.saturating_sub(from);
        let pick = |p: &Option<std::sync::Arc<switchyard_proxy::PoolStats>>| {
            p.as_ref().filter(|_| window_s > 0).map_or_else(Sample::default, |p| Sample::of(p, from, tick))
        };
        let (verdict, mut view) = judge::judge(&s.analysis, &pick(&canary), &pick(&baseline), window_s);
        let failures = match verdict {
            Verdict::Fail => r.analysis.consecutive_failures + 1,
            Verdict::Pass => 0,
            Verdict::Insufficient => r.analysis.consecutive_failures,
        };
        view.consecutive_failures = failures;
        for c in &view.checks {
            if let Some(v) = c.value {
                // Metrics in seconds, the rollout object in ms.
                let (v, l) = if c.name == "p99" { (v / 1000.0, c.limit / 1000.0) } else { (v, c.limit) };
                switchyard_metrics::rollout_analysis(service, &c.name, v, l);
            }
        }
        let figures = judge::figures(&view);
        let elapsed = Duration::from_secs(tick.saturating_sub(clock.step_tick));
        let (k, n) = (r.step, r.steps.len());
        let progressing = r.phase == Phase::Progressing;
        let message = match verdict {
            Verdict::Fail if failures >= s.failure_limit => {
                let reason = format!("rollout {} rolled back after {failures} failing analyses: {figures}", r.id);
                tracing::warn!(%service, "{reason}");
                let (kind, phase) = (Kind::AutoRollback, Phase::RolledBack);
                return self.return_to_start(service, kind, phase, reason, "rollout".into(), Some(view));
            }
            Verdict::Fail => format!("analysis failed ({failures} of {}): {figures}", s.failure_limit),
            Verdict::Pass if progressing && elapsed >= s.step_interval => {
                let reason =
                    format!("rollout {}: step {}/{n}, {} at {}% ({figures})", r.id, k + 2, r.pool, r.steps[k + 1]);
                return match self.step_to(service, &r, k + 1, reason, "rollout".into()) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        self.note(service, view, format!("cannot advance: {e}"));
                        Err(e)
                    }
                };
            }
            Verdict::Pass => format!("step {}/{n} passing: {figures}", k + 1),
            Verdict::Insufficient if progressing && elapsed >= s.max_step_duration => {
                let why = format!(
                    "insufficient data after {}: canary n={} < {}",
                    switchyard_config::format_duration(elapsed),
                    view.canary.requests,
                    s.analysis.min_requests
                );
                return self.inconclusive(service, &r, view, why);
            }
            Verdict::Insufficient => {
                format!(
                    "step {}/{n}: waiting for data: canary n={} < {}",
                    k + 1,
                    view.canary.requests,
                    s.analysis.min_requests
                )
            }
        };
        self.note(service, view, message);
        Ok(())
    }

    /// `max_step_duration` passed without a verdict: `on_inconclusive` decides.
    fn inconclusive(
        &mut self,
        service: &str,
        r: &Rollout,
        view: AnalysisView,
        why: String,
    ) -> Result<(), ControlError> {
        match r.settings.on_inconclusive {
            OnInconclusive::Pause => {
                let mut st = self.service_state(service)?.clone();
                let roll = st.rollout.as_mut().ok_or_else(|| ControlError::NoRollout(service.into()))?;
                roll.phase = Phase::Paused;
                roll.message = format!("paused: {why}");
                roll.next_step_at = None;
                roll.analysis = view;
                self.commit_service(service, st)
            }
            OnInconclusive::Abort => {
                let reason = format!("rollout {} rolled back: {why} (on_inconclusive = abort)", r.id);
                self.return_to_start(
                    service,
                    Kind::AutoRollback,
                    Phase::RolledBack,
                    reason,
                    "rollout".into(),
                    Some(view),
                )
            }
            OnInconclusive::Continue => {
                let k = r.step + 1;
                let reason = format!(
                    "rollout {}: step {}/{}, {} at {}% without a verdict ({why}; on_inconclusive = continue)",
                    r.id,
                    k + 1,
                    r.steps.len(),
                    r.pool,
                    r.steps[k]
                );
                self.step_to(service, r, k, reason, "rollout".into())
            }
        }
    }

    /// Keeps the latest analysis and message in memory (persisted with the next
    /// change). A paused rollout keeps the message that says why it is paused.
    fn note(&mut self, service: &str, view: AnalysisView, message: String) {
        if let Some(r) = self.state.services.get_mut(service).and_then(|st| st.rollout.as_mut()) {
            r.analysis = view;
            if r.phase == Phase::Progressing {
                r.message = message;
            }
        }
    }

    /// After a restart: a running rollout stays on its step with a fresh clock and window.
    pub(crate) fn resume_after_restart(state: &mut crate::state::State) {
        for st in state.services.values_mut() {
            if let Some(r) = st.rollout.as_mut().filter(|r| r.phase.is_running()) {
                r.step_started_at = now();
                r.analysis = AnalysisView::default();
                if r.phase == Phase::Progressing {
                    r.next_step_at = Some(at(r.settings.step_interval));
                    r.message = format!("restarted: step {}/{} goes on with a fresh window", r.step + 1, r.steps.len());
                }
            }
        }
    }
}

/// Rollout metrics after a commit: progress gauges always (present from start),
/// and a count for a rollout that ended since `before` (never on a restart).
pub(crate) fn observe(service: &str, before: Option<&ServiceState>, now: &ServiceState) {
    match now.running() {
        Some(r) => {
            switchyard_metrics::rollout_progress(service, i64::try_from(r.step).unwrap_or(-1), r.weight.as_percent())
        }
        None => switchyard_metrics::rollout_progress(service, -1, 0.0),
    }
    let was_running = before.and_then(ServiceState::running).map(|r| r.id.as_str());
    if let Some(r) = now.rollout.as_ref().filter(|r| !r.phase.is_running() && was_running == Some(r.id.as_str())) {
        let result = match r.phase {
            Phase::Promoted => "promoted",
            Phase::RolledBack => "auto_rollback",
            Phase::Aborted => "aborted",
            _ => "cancelled",
        };
        switchyard_metrics::rollout_ended(service, result);
    }
}
