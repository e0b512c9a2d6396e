//! The control task's mailbox: a cloneable handle, and the one thread that applies
//! commands in order. A plain thread, because each change fsyncs the state file and
//! that must not stall the proxy's async workers. An `inline` handle applies its
//! changes itself when that thread is not applying one, under the same lock.

use crate::command::{ChangeMeta, Command, ControlError, Envelope, ReloadSource, Reply};
use crate::controller::Controller;
use crate::state::Event;
use crate::view::{ServiceView, ServicesView};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, TryLockError};
use switchyard_config::Config;
use switchyard_config::Weight;
use tokio::sync::{mpsc, oneshot, watch};

/// Sends commands to the control task. Cheap to clone.
#[derive(Clone)]
pub struct ControlHandle {
    tx: mpsc::Sender<Envelope>,
    config: watch::Receiver<Arc<Config>>,
    ticks: watch::Receiver<u64>,
    /// The controller, locked by the control thread for each command it applies.
    controller: Arc<Mutex<Controller>>,
    /// Whether traffic changes are applied on the caller's thread (`inline`).
    inline: bool,
}

/// Starts the control task; it runs until every handle is dropped. Inside a tokio
/// runtime it also starts the stats sampler on the controller's table (it stops
/// when every handle is dropped); outside one there is none and `ticks` never moves.
pub fn spawn(mut controller: Controller) -> ControlHandle {
    let ticks = match tokio::runtime::Handle::try_current() {
        Ok(_) => switchyard_proxy::spawn_sampler(controller.publisher.router()),
        Err(_) => watch::channel(0).1,
    };
    controller.ticks = Some(ticks.clone());
    let (tx, mut rx) = mpsc::channel::<Envelope>(256);
    let (config_tx, config) = watch::channel(controller.config().clone());
    let controller = Arc::new(Mutex::new(controller));
    let shared = controller.clone();
    let spawned = std::thread::Builder::new().name("switchyard-control".into()).spawn(move || {
        while let Some((cmd, reply)) = rx.blocking_recv() {
            // A change that panicked half-way on a caller's thread left the controller
            // unsure: stop, and every call from then on is refused as unavailable.
            let Ok(mut controller) = shared.lock() else { break };
            let reloaded = matches!(cmd, Command::Reload { .. });
            let result = controller.apply(cmd);
            let applied = reloaded && result.is_ok();
            if applied {
                // Before the reply, so a caller that saw the reload succeed sees the config too.
                config_tx.send_replace(controller.config().clone());
            }
            let _ = reply.send(result);
            controller.log_applied();
            if applied {
                // The old config and table are gone by now (or soon): give their memory back.
                crate::heap::trim();
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the control thread");
    }
    forward_ticks(&tx, ticks.clone());
    ControlHandle { tx, config, ticks, controller, inline: false }
}

/// Every sampler tick becomes a `Command::Tick` for the control thread (running
/// rollouts judge and act there). It holds the mailbox weakly, so it ends, and
/// with it the sampler, once every handle is gone.
fn forward_ticks(tx: &mpsc::Sender<Envelope>, mut ticks: watch::Receiver<u64>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
    let weak = tx.downgrade();
    rt.spawn(async move {
        while ticks.changed().await.is_ok() {
            let tick = *ticks.borrow_and_update();
            let Some(tx) = weak.upgrade() else { break };
            let (reply, _) = oneshot::channel();
            // A full mailbox skips this tick; the next one judges the window so far.
            let _ = tx.try_send((Command::Tick(tick), reply));
        }
    });
}

impl ControlHandle {
    /// The config in force, updated after every successful reload (for parts that
    /// read files of their own from it, like the admin API's tokens).
    pub fn config(&self) -> watch::Receiver<Arc<Config>> {
        self.config.clone()
    }

    /// The stats sampler's ticks: tick k is published once every pool has taken its
    /// sample of second k (seconds since the sampler started).
    pub fn ticks(&self) -> watch::Receiver<u64> {
        self.ticks.clone()
    }

    /// Whether the control task is gone (shutting down).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Applies switches, weight changes and rollbacks on the calling thread, instead
    /// of handing them over, when the controller's lock is free (the control thread
    /// is not applying a command) and outside cluster mode (whose commits wait on
    /// the store). The caller's thread then blocks for the change's build, warm-up
    /// wait (20 ms at most) and fsync: give it only to a runtime that serves no
    /// proxy traffic (the binary's admin runtime).
    pub fn inline(mut self) -> ControlHandle {
        self.inline = true;
        self
    }

    /// Sends a command and waits for its answer (given after the change is live).
    pub async fn call(&self, cmd: Command) -> Result<Reply, ControlError> {
        let change = matches!(cmd, Command::Switch { .. } | Command::SetWeights { .. } | Command::Rollback { .. });
        if self.inline && change {
            // Taken only when free: a command the control thread is applying goes first.
            match self.controller.try_lock() {
                Ok(mut controller) if !controller.clustered() => {
                    let result = controller.apply(cmd);
                    controller.log_applied();
                    return result;
                }
                Err(TryLockError::Poisoned(_)) => return Err(ControlError::Unavailable),
                _ => {}
            }
        }
        let (tx, rx) = oneshot::channel();
        self.tx.send((cmd, tx)).await.map_err(|_| ControlError::Unavailable)?;
        rx.await.map_err(|_| ControlError::Unavailable)?
    }

    async fn service_reply(&self, cmd: Command) -> Result<ServiceView, ControlError> {
        match self.call(cmd).await? {
            Reply::Service(v) => Ok(v),
            _ => Err(ControlError::Unavailable),
        }
    }

    /// All traffic of `service` to `pool`.
    pub async fn switch(&self, service: &str, pool: &str, meta: ChangeMeta) -> Result<ServiceView, ControlError> {
        self.service_reply(Command::Switch { service: service.into(), pool: pool.into(), meta }).await
    }

    /// A weighted split.
    pub async fn set_weights(
        &self,
        service: &str,
        weights: BTreeMap<String, Weight>,
        meta: ChangeMeta,
    ) -> Result<ServiceView, ControlError> {
        self.service_reply(Command::SetWeights { service: service.into(), weights, meta }).await
    }

    /// Undo the latest change not yet undone.
    pub async fn rollback(&self, service: &str, meta: ChangeMeta) -> Result<ServiceView, ControlError> {
        self.service_reply(Command::Rollback { service: service.into(), meta }).await
    }

    /// Re-read the config file; the new generation and warnings, or every problem.
    pub async fn reload(&self, source: ReloadSource) -> Result<crate::ReloadReport, ControlError> {
        match self.call(Command::Reload { source }).await? {
            Reply::Reloaded(r) => Ok(r),
            _ => Err(ControlError::Unavailable),
        }
    }

    /// Every service's status.
    pub async fn services(&self) -> Result<ServicesView, ControlError> {
        match self.call(Command::Services).await? {
            Reply::Services(v) => Ok(v),
            _ => Err(ControlError::Unavailable),
        }
    }

    /// One service's status.
    pub async fn service(&self, name: &str) -> Result<ServiceView, ControlError> {
        self.service_reply(Command::Service(name.into())).await
    }

    /// A preview token for `pool` of `service`, valid for `ttl`.
    pub async fn preview_token(
        &self,
        service: &str,
        pool: &str,
        ttl: std::time::Duration,
    ) -> Result<crate::PreviewTokenView, ControlError> {
        match self.call(Command::PreviewToken { service: service.into(), pool: pool.into(), ttl }).await? {
            Reply::PreviewToken(v) => Ok(v),
            _ => Err(ControlError::Unavailable),
        }
    }

    /// Starts a progressive rollout: checks, smoke requests to every canary
    /// backend, then the first step.
    pub async fn rollout_start(
        &self,
        service: &str,
        pool: &str,
        settings: switchyard_config::RolloutSettings,
        meta: ChangeMeta,
    ) -> Result<ServiceView, ControlError> {
        let plan = Command::RolloutPlan { service: service.into(), pool: pool.into(), settings: settings.clone() };
        let Reply::SmokePlan(plan) = self.call(plan).await? else {
            return Err(ControlError::Unavailable);
        };
        crate::smoke::run(&plan).await.map_err(ControlError::Conflict)?;
        let start =
            Command::RolloutStart { service: service.into(), pool: pool.into(), settings: Box::new(settings), meta };
        self.service_reply(start).await
    }

    /// Pause, resume, abort or promote the running rollout.
    pub async fn rollout_control(
        &self,
        service: &str,
        action: crate::RolloutAction,
        meta: ChangeMeta,
    ) -> Result<ServiceView, ControlError> {
        self.service_reply(Command::RolloutControl { service: service.into(), action, meta }).await
    }

    /// The running rollout, else the last one.
    pub async fn rollout(&self, service: &str) -> Result<crate::Rollout, ControlError> {
        match self.call(Command::Rollout(service.into())).await? {
            Reply::Rollout(r) => Ok(*r),
            _ => Err(ControlError::Unavailable),
        }
    }

    /// One service's history, newest first.
    pub async fn history(&self, name: &str) -> Result<Vec<Event>, ControlError> {
        match self.call(Command::History(name.into())).await? {
            Reply::History(v) => Ok(v),
            _ => Err(ControlError::Unavailable),
        }
    }
}
