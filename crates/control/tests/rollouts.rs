//! Progressive rollouts on the control path (SPEC §9), driven second by second:
//! synthetic requests are recorded into the pools' live stats in proportion to
//! their weights, the stats are sampled, and the controller gets the tick — so a
//! five-minute rollout runs in milliseconds, deterministically.

#![allow(clippy::unwrap_used)]

use std::time::Duration;
use switchyard_config::{RolloutSettings, Weight};
use switchyard_control::{ChangeMeta, Command, ControlError, Controller, Kind, Phase, Reply, Rollout, ServiceView};
use switchyard_proxy::Router;

struct Sim {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    c: Controller,
    router: Router,
    tick: u64,
    seed: u64,
}

/// How a pool behaves: share of 5xx and time to first byte.
#[derive(Clone, Copy)]
struct Behaviour {
    error_rate: f64,
    ttfb: Duration,
}

const HEALTHY: Behaviour = Behaviour { error_rate: 0.002, ttfb: Duration::from_millis(20) };

fn config_text(dir: &std::path::Path) -> String {
    format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"{}\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:9\"]\n[service.pools.green]\nbackends = [\"127.0.0.1:10\"]\n",
        dir.join("state.json").display()
    )
}

fn settings(steps: &[u32]) -> RolloutSettings {
    let mut s = RolloutSettings {
        steps: steps.iter().map(|w| Weight(w * 100)).collect(),
        step_interval: Duration::from_secs(60),
        interval: Duration::from_secs(5),
        ..RolloutSettings::default()
    };
    s.analysis.min_requests = 200;
    s
}

fn meta(actor: &str, reason: &str) -> ChangeMeta {
    ChangeMeta { actor: actor.into(), reason: reason.into(), ..ChangeMeta::default() }
}

impl Sim {
    fn new() -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sy.toml");
        std::fs::write(&path, config_text(dir.path())).unwrap();
        let (c, router) = Controller::start(switchyard_config::load(&path).unwrap(), false).unwrap();
        Sim { _dir: dir, path, c, router, tick: 0, seed: 7 }
    }

    /// Kill and start again on the same files.
    fn restart(self) -> Sim {
        let Sim { _dir, path, c, .. } = self;
        drop(c);
        let (c, router) = Controller::start(switchyard_config::load(&path).unwrap(), false).unwrap();
        Sim { _dir, path, c, router, tick: 0, seed: 11 }
    }

    fn start(&mut self, pool: &str, s: RolloutSettings) -> Result<ServiceView, ControlError> {
        let cmd = Command::RolloutStart {
            service: "shop".into(),
            pool: pool.into(),
            settings: Box::new(s),
            meta: meta("ci", "deploy 42"),
        };
        match self.c.apply(cmd)? {
            Reply::Service(v) => Ok(v),
            other => panic!("{other:?}"),
        }
    }

    fn control(&mut self, action: switchyard_control::RolloutAction) -> Result<ServiceView, ControlError> {
        let cmd = Command::RolloutControl { service: "shop".into(), action, meta: meta("alice", "looked at it") };
        match self.c.apply(cmd)? {
            Reply::Service(v) => Ok(v),
            other => panic!("{other:?}"),
        }
    }

    fn rollout(&mut self) -> Rollout {
        match self.c.apply(Command::Rollout("shop".into())).unwrap() {
            Reply::Rollout(r) => *r,
            other => panic!("{other:?}"),
        }
    }

    fn service(&mut self) -> ServiceView {
        match self.c.apply(Command::Service("shop".into())).unwrap() {
            Reply::Service(v) => v,
            other => panic!("{other:?}"),
        }
    }

    fn history(&mut self) -> Vec<switchyard_control::Event> {
        match self.c.apply(Command::History("shop".into())).unwrap() {
            Reply::History(h) => h,
            other => panic!("{other:?}"),
        }
    }

    fn random(&mut self) -> f64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        #[allow(clippy::cast_precision_loss)]
        let r = (self.seed % 1_000_000) as f64 / 1_000_000.0;
        r
    }

    /// One second of `rps` requests split by the live weights, then the sample and the tick.
    fn second(&mut self, rps: u32, blue: Behaviour, green: Behaviour) {
        let table = self.router.load();
        let svc = table.service("shop").unwrap().clone();
        for pool in svc.pools.iter() {
            let b = if &*pool.name == "green" { green } else { blue };
            let n = u64::from(rps) * u64::from(pool.weight.0) / 10_000;
            for _ in 0..n {
                let status = if self.random() < b.error_rate { 503 } else { 200 };
                // ±25 % jitter so the histogram has a spread.
                let jitter = 0.75 + self.random() / 2.0;
                pool.stats.record(status, b.ttfb.mul_f64(jitter));
            }
        }
        self.tick += 1;
        for pool in svc.pools.iter() {
            pool.stats.sample(self.tick);
        }
        self.c.apply(Command::Tick(self.tick)).unwrap();
    }

    /// Runs seconds until the rollout leaves `phase` or `limit` seconds pass; the seconds taken.
    fn run_while(&mut self, phase: Phase, limit: u64, rps: u32, blue: Behaviour, green: Behaviour) -> u64 {
        for s in 1..=limit {
            self.second(rps, blue, green);
            if self.rollout().phase != phase {
                return s;
            }
        }
        limit
    }

    fn green_weight(&mut self) -> Weight {
        self.service().traffic.weight("green")
    }
}

#[test]
fn a_healthy_canary_is_promoted_through_every_step_with_its_figures_in_history() {
    let mut sim = Sim::new();
    let v = sim.start("green", settings(&[5, 25, 50, 100])).unwrap();
    let r = v.rollout.unwrap();
    assert_eq!((r.phase, r.step, r.weight, r.baseline.as_str()), (Phase::Progressing, 0, Weight(500), "blue"));
    assert_eq!(v.traffic.weight("green"), Weight(500));
    let took = sim.run_while(Phase::Progressing, 600, 400, HEALTHY, HEALTHY);
    let r = sim.rollout();
    assert_eq!(r.phase, Phase::Promoted, "{}", r.message);
    assert_eq!(sim.green_weight(), Weight::FULL);
    // Three advances, each after step_interval (60 s) and a passing analysis.
    assert!((180..=200).contains(&took), "promoted after {took}s");
    let steps: Vec<_> = sim.history().into_iter().filter(|e| e.kind == Kind::RolloutStep).collect();
    assert_eq!(steps.len(), 4, "start and three advances");
    assert!(steps.iter().take(3).all(|e| e.actor == "rollout" && e.reason.contains("canary n=")), "{steps:?}");
    assert_eq!(steps[3].actor, "ci");
    // A rollback after a promotion returns to the traffic before the rollout.
    sim.c.apply(Command::Rollback { service: "shop".into(), meta: meta("api", "") }).unwrap();
    assert_eq!(sim.green_weight(), Weight::ZERO);
}

#[test]
fn a_canary_failing_a_fifth_of_requests_rolls_back_to_the_start_within_the_failure_limit() {
    let mut sim = Sim::new();
    let mut s = settings(&[10, 50, 100]);
    s.analysis.fast_fail_errors = 0; // judged by the analysis alone here
    sim.start("green", s).unwrap();
    let bad = Behaviour { error_rate: 0.2, ..HEALTHY };
    let mut first_fail = None;
    for second in 1..=120 {
        sim.second(400, HEALTHY, bad);
        let r = sim.rollout();
        if first_fail.is_none() && r.analysis.verdict == "fail" {
            first_fail = Some(second);
        }
        if r.phase != Phase::Progressing {
            let first = first_fail.unwrap_or(second);
            // failure_limit (2) × interval (5 s), plus one interval.
            assert!(second - first <= 15, "first fail at {first}s, rolled back at {second}s");
            break;
        }
    }
    let r = sim.rollout();
    assert_eq!(r.phase, Phase::RolledBack, "{}", r.message);
    assert_eq!(sim.green_weight(), Weight::ZERO);
    let last = &sim.history()[0];
    assert_eq!((last.kind, last.actor.as_str()), (Kind::AutoRollback, "rollout"));
    assert!(last.reason.contains("error rate") && last.reason.contains("FAIL"), "{}", last.reason);
    // The rollout was one change and its rollback undid it: nothing left to roll back.
    let e = sim.c.apply(Command::Rollback { service: "shop".into(), meta: meta("api", "") }).unwrap_err();
    assert!(matches!(e, ControlError::NothingToRollBack(_)), "{e}");
}

#[test]
fn a_canary_three_times_slower_than_the_baseline_rolls_back() {
    let mut sim = Sim::new();
    sim.start("green", settings(&[25, 50, 100])).unwrap();
    let slow = Behaviour { ttfb: HEALTHY.ttfb * 3, ..HEALTHY };
    sim.run_while(Phase::Progressing, 120, 400, HEALTHY, slow);
    let r = sim.rollout();
    assert_eq!(r.phase, Phase::RolledBack, "{}", r.message);
    let ratio = r.analysis.checks.iter().find(|c| c.name == "latency_ratio").unwrap();
    assert_eq!(ratio.result, "fail", "{ratio:?}");
    assert!(ratio.p.unwrap() < 0.01);
}

#[test]
fn consecutive_canary_errors_roll_back_at_once_whatever_the_sample_size() {
    let mut sim = Sim::new();
    sim.start("green", settings(&[1, 50, 100])).unwrap();
    // 1 % of 100 rps: one request a second to green, all failing; 20 in a row trips it.
    let dead = Behaviour { error_rate: 1.0, ..HEALTHY };
    let took = sim.run_while(Phase::Progressing, 60, 100, HEALTHY, dead);
    let r = sim.rollout();
    assert_eq!(r.phase, Phase::RolledBack, "{}", r.message);
    assert!(r.message.contains("consecutive 5xx"), "{}", r.message);
    assert!((20..=22).contains(&took), "{took}");
    assert!(r.analysis.canary.requests < 200, "rolled back before the sample gate");
}

#[test]
fn too_little_traffic_never_advances_and_pauses_after_max_step_duration() {
    let mut sim = Sim::new();
    let mut s = settings(&[10, 100]);
    s.max_step_duration = Duration::from_secs(120);
    sim.start("green", s).unwrap();
    // 10 rps: one canary request a second, 120 in the step's window, never 200.
    let took = sim.run_while(Phase::Progressing, 300, 10, HEALTHY, HEALTHY);
    let r = sim.rollout();
    assert_eq!(r.phase, Phase::Paused);
    assert!((120..=126).contains(&took), "{took}");
    assert!(r.message.contains("insufficient data after") && r.message.contains("< 200"), "{}", r.message);
    assert_eq!(sim.green_weight(), Weight(1000), "never advanced");
}

#[test]
fn pause_resume_abort_and_promote_do_what_the_spec_says() {
    use switchyard_control::RolloutAction::*;
    let mut sim = Sim::new();
    assert!(matches!(sim.control(Pause), Err(ControlError::Conflict(_))), "nothing to pause");
    sim.start("green", settings(&[10, 50, 100])).unwrap();
    assert!(matches!(sim.start("green", settings(&[10, 100])), Err(ControlError::Conflict(_))), "one at a time");
    assert!(matches!(sim.control(Resume), Err(ControlError::Conflict(_))), "resume while progressing");
    sim.control(Pause).unwrap();
    assert!(matches!(sim.control(Pause), Err(ControlError::Conflict(_))), "pause while paused");
    // Paused: weights frozen long past step_interval.
    for _ in 0..200 {
        sim.second(400, HEALTHY, HEALTHY);
    }
    assert_eq!((sim.rollout().phase, sim.green_weight()), (Phase::Paused, Weight(1000)));
    sim.control(Resume).unwrap();
    let took = sim.run_while(Phase::Progressing, 59, 400, HEALTHY, HEALTHY);
    assert_eq!((took, sim.green_weight()), (59, Weight(1000)), "resume restarted the step's clock");
    sim.control(Promote).unwrap();
    assert_eq!((sim.rollout().phase, sim.green_weight()), (Phase::Promoted, Weight::FULL));
    let last = &sim.history()[0];
    assert_eq!((last.kind, last.actor.as_str()), (Kind::RolloutStep, "alice"));

    sim.c.apply(Command::Switch { service: "shop".into(), pool: "blue".into(), meta: meta("api", "") }).unwrap();
    sim.start("green", settings(&[10, 50, 100])).unwrap();
    sim.control(Abort).unwrap();
    let r = sim.rollout();
    assert_eq!((r.phase, sim.green_weight()), (Phase::Aborted, Weight::ZERO));
    assert_eq!(sim.history()[0].kind, Kind::RolloutAbort);
    assert!(matches!(sim.control(Abort), Err(ControlError::Conflict(_))));
}

#[test]
fn a_manual_change_cancels_the_rollout_and_says_so() {
    let mut sim = Sim::new();
    sim.start("green", settings(&[10, 50, 100])).unwrap();
    let id = sim.rollout().id;
    let w = std::collections::BTreeMap::from([("blue".into(), Weight(7000)), ("green".into(), Weight(3000))]);
    sim.c.apply(Command::SetWeights { service: "shop".into(), weights: w, meta: meta("api", "by hand") }).unwrap();
    let r = sim.rollout();
    assert_eq!(r.phase, Phase::Cancelled);
    let last = &sim.history()[0];
    assert_eq!(last.kind, Kind::Weights);
    assert!(last.reason.contains(&format!("cancelled rollout {id}")), "{}", last.reason);
    // Cancelled means hands off: the weights stay as set.
    for _ in 0..120 {
        sim.second(400, HEALTHY, HEALTHY);
    }
    assert_eq!(sim.green_weight(), Weight(3000));
    assert!(sim.service().rollout.is_none());
}

#[test]
fn a_restart_keeps_the_step_with_a_fresh_window_and_never_advances_because_of_it() {
    let mut sim = Sim::new();
    sim.start("green", settings(&[10, 50, 100])).unwrap();
    // 50 s into the first step: 10 s short of step_interval.
    for _ in 0..50 {
        sim.second(400, HEALTHY, HEALTHY);
    }
    let mut sim = sim.restart();
    let r = sim.rollout();
    assert_eq!((r.phase, r.step, r.analysis.verdict.as_str()), (Phase::Progressing, 0, "insufficient"));
    assert_eq!(sim.green_weight(), Weight(1000));
    let took = sim.run_while(Phase::Progressing, 58, 400, HEALTHY, HEALTHY);
    assert_eq!((took, sim.rollout().step), (58, 0), "the step's clock started again at the restart");
    for _ in 0..10 {
        sim.second(400, HEALTHY, HEALTHY);
    }
    assert_eq!(sim.rollout().step, 1, "and goes on after a full step_interval");
}

#[test]
fn starts_that_cannot_be_judged_are_refused_and_change_nothing() {
    let mut sim = Sim::new();
    assert!(matches!(sim.start("purple", settings(&[10, 100])), Err(ControlError::UnknownPool { .. })));
    // Already at 100 %: every step below is skipped, nothing left to judge.
    assert!(matches!(sim.start("blue", settings(&[10, 100])), Err(ControlError::Conflict(_))));
    let v = sim.service();
    assert_eq!((v.version, v.traffic.weight("blue")), (1, Weight::FULL));
    // Steps at or below the canary's weight are skipped.
    let w = std::collections::BTreeMap::from([("blue".into(), Weight(7000)), ("green".into(), Weight(3000))]);
    sim.c.apply(Command::SetWeights { service: "shop".into(), weights: w, meta: meta("api", "") }).unwrap();
    let r = sim.start("green", settings(&[10, 25, 50, 100])).unwrap().rollout.unwrap();
    assert_eq!(r.steps, vec![Weight(5000), Weight::FULL]);
    assert_eq!(r.from.weight("green"), Weight(3000));
}

/// Awaits a call to the control thread with the paused clock held still. The
/// control thread is a real thread: while this runtime waits for its answer it is
/// idle, and tokio would auto-advance the clock to the sampler's next ticks (on a
/// busy machine, past the step's deadline, with no traffic recorded for them). A
/// blocking task in flight keeps tokio from auto-advancing.
async fn held<T>(call: impl Future<Output = T>) -> T {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let guard = tokio::task::spawn_blocking(move || {
        let _ = wait.recv();
    });
    let out = call.await;
    drop(done);
    guard.await.unwrap();
    out
}

/// The whole stack on tokio's paused clock: the sampler's ticks reach the control
/// thread through the handle, and a five-step rollout with one-minute steps is
/// promoted in (virtual) minutes that take milliseconds.
#[tokio::test(start_paused = true)]
async fn the_sampler_drives_a_five_step_rollout_on_the_paused_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sy.toml");
    std::fs::write(&path, config_text(dir.path())).unwrap();
    let (c, router) = Controller::start(switchyard_config::load(&path).unwrap(), false).unwrap();
    let handle = switchyard_control::spawn(c);
    let started = tokio::time::Instant::now();
    let v = held(handle.rollout_start("shop", "green", settings(&[1, 5, 25, 50, 100]), meta("ci", ""))).await.unwrap();
    assert_eq!(v.traffic.weight("green"), Weight(100));
    let mut phase = Phase::Progressing;
    for _ in 0..2000 {
        let table = router.load();
        for pool in table.service("shop").unwrap().pools.iter() {
            // 4000 rps in all; the canary gets its weight's share.
            for _ in 0..u64::from(pool.weight.0) * 4000 / 10_000 {
                pool.stats.record(200, Duration::from_millis(20));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        phase = held(handle.rollout("shop")).await.unwrap().phase;
        if phase != Phase::Progressing {
            break;
        }
    }
    assert_eq!(phase, Phase::Promoted);
    // Never faster than four step intervals.
    let virtual_secs = started.elapsed().as_secs();
    assert!(virtual_secs >= 4 * 60, "four one-minute steps took {virtual_secs} virtual seconds");
    assert_eq!(held(handle.service("shop")).await.unwrap().traffic.weight("green"), Weight::FULL);
}

#[test]
fn a_reload_that_changes_traffic_cancels_the_rollout_and_one_that_does_not_leaves_it() {
    let mut sim = Sim::new();
    sim.start("green", settings(&[10, 50, 100])).unwrap();
    let id = sim.rollout().id;
    // The same file again: nothing to cancel.
    sim.c.apply(Command::Reload { source: switchyard_control::ReloadSource::Admin }).unwrap();
    assert_eq!(sim.rollout().phase, Phase::Progressing);
    let text =
        std::fs::read_to_string(&sim.path).unwrap().replace("active = \"blue\"", "weights = { blue = 80, green = 20 }");
    std::fs::write(&sim.path, text).unwrap();
    sim.c.apply(Command::Reload { source: switchyard_control::ReloadSource::Admin }).unwrap();
    assert_eq!(sim.rollout().phase, Phase::Cancelled);
    let last = &sim.history()[0];
    assert_eq!((last.kind, last.to.weight("green")), (Kind::Config, Weight(2000)));
    assert!(last.reason.contains(&format!("cancelled rollout {id}")), "{}", last.reason);
}

#[test]
fn a_manual_change_to_the_weights_already_in_force_still_cancels_the_rollout() {
    let mut sim = Sim::new();
    sim.start("green", settings(&[10, 50, 100])).unwrap();
    let w = std::collections::BTreeMap::from([("blue".into(), Weight(9000)), ("green".into(), Weight(1000))]);
    let v =
        match sim.c.apply(Command::SetWeights { service: "shop".into(), weights: w, meta: meta("api", "") }).unwrap() {
            Reply::Service(v) => v,
            other => panic!("{other:?}"),
        };
    assert_eq!((v.version, v.rollout.is_none()), (2, true), "no new version, no rollout");
    assert_eq!(sim.rollout().phase, Phase::Cancelled);
    for _ in 0..120 {
        sim.second(400, HEALTHY, HEALTHY);
    }
    assert_eq!(sim.green_weight(), Weight(1000), "nothing advanced it");
}

#[test]
fn a_reload_whose_traffic_names_the_weights_in_force_still_cancels_the_rollout() {
    let mut sim = Sim::new();
    sim.start("green", settings(&[10, 50, 100])).unwrap();
    let text =
        std::fs::read_to_string(&sim.path).unwrap().replace("active = \"blue\"", "weights = { blue = 90, green = 10 }");
    std::fs::write(&sim.path, text).unwrap();
    sim.c.apply(Command::Reload { source: switchyard_control::ReloadSource::Admin }).unwrap();
    assert_eq!((sim.rollout().phase, sim.green_weight()), (Phase::Cancelled, Weight(1000)));
}

#[test]
fn a_paused_rollout_keeps_saying_why_it_is_paused() {
    let mut sim = Sim::new();
    sim.start("green", settings(&[10, 50, 100])).unwrap();
    sim.control(switchyard_control::RolloutAction::Pause).unwrap();
    for _ in 0..30 {
        sim.second(400, HEALTHY, HEALTHY);
    }
    let r = sim.rollout();
    assert_eq!(r.message, "paused by alice: looked at it");
    assert_eq!(r.analysis.verdict, "pass", "the analysis keeps running while paused");
}

#[test]
fn an_old_run_of_errors_does_not_count_against_the_next_rollout() {
    let mut sim = Sim::new();
    sim.start("green", settings(&[1, 50, 100])).unwrap();
    let dead = Behaviour { error_rate: 1.0, ..HEALTHY };
    sim.run_while(Phase::Progressing, 60, 100, HEALTHY, dead);
    assert_eq!(sim.rollout().phase, Phase::RolledBack);
    // Green is fixed; one unlucky 5xx early in the next rollout is not a run of 20.
    sim.start("green", settings(&[10, 50, 100])).unwrap();
    let pools = sim.router.load().service("shop").unwrap().clone();
    pools.pool("green").unwrap().stats.record(503, Duration::from_millis(5));
    for _ in 0..10 {
        sim.second(400, HEALTHY, HEALTHY);
    }
    assert_eq!(sim.rollout().phase, Phase::Progressing, "{}", sim.rollout().message);
}

#[test]
fn on_inconclusive_abort_rolls_back_like_a_failed_analysis() {
    let mut sim = Sim::new();
    let mut s = settings(&[10, 100]);
    s.max_step_duration = Duration::from_secs(60);
    s.on_inconclusive = switchyard_config::OnInconclusive::Abort;
    sim.start("green", s).unwrap();
    sim.run_while(Phase::Progressing, 120, 10, HEALTHY, HEALTHY);
    let r = sim.rollout();
    assert_eq!((r.phase, sim.green_weight()), (Phase::RolledBack, Weight::ZERO), "{}", r.message);
    assert_eq!(sim.history()[0].kind, Kind::AutoRollback);
}
