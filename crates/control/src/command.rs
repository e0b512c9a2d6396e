//! What can be asked of the control task, and how it can refuse.

use crate::rollout::Rollout;
use crate::rollout_ctl::RolloutAction;
use crate::state::Event;
use crate::view::{ServiceView, ServicesView};
use std::collections::BTreeMap;
use switchyard_config::{RolloutSettings, Weight};
use tokio::sync::oneshot;

/// Who asks for a traffic change, and on what terms.
#[derive(Debug, Clone, Default)]
pub struct ChangeMeta {
    /// Token name, `api`, or `rollout`.
    pub actor: String,
    /// Free text for history.
    pub reason: String,
    /// Override the health gate.
    pub force: bool,
    /// Refuse unless the service is at this version (`If-Match`).
    pub if_match: Option<u64>,
}

/// What set off a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadSource {
    /// SIGHUP.
    Signal,
    /// `--watch` saw the file change.
    Watch,
    /// `POST /v1/reload`.
    Admin,
}

impl ReloadSource {
    /// For logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadSource::Signal => "signal",
            ReloadSource::Watch => "watch",
            ReloadSource::Admin => "admin",
        }
    }
}

/// A change or a question for the control task.
#[derive(Debug, Clone)]
pub enum Command {
    /// All traffic to one pool.
    Switch {
        /// Service name.
        service: String,
        /// Pool name.
        pool: String,
        /// Who and why.
        meta: ChangeMeta,
    },
    /// A weighted split; pools left out get 0.
    SetWeights {
        /// Service name.
        service: String,
        /// Pool → weight.
        weights: BTreeMap<String, Weight>,
        /// Who and why.
        meta: ChangeMeta,
    },
    /// Back to the traffic before the latest change not yet rolled back.
    Rollback {
        /// Service name.
        service: String,
        /// Who and why.
        meta: ChangeMeta,
    },
    /// Re-read the config file and apply it, or keep the old one.
    Reload {
        /// What asked for it.
        source: ReloadSource,
    },
    /// Every service's status.
    Services,
    /// One service's status.
    Service(String),
    /// One service's history, newest first.
    History(String),
    /// Checks a rollout start; answers where its smoke requests go.
    RolloutPlan {
        /// Service name.
        service: String,
        /// The canary pool.
        pool: String,
        /// Settings after the call's overrides.
        settings: RolloutSettings,
    },
    /// Starts a rollout whose smoke requests passed.
    RolloutStart {
        /// Service name.
        service: String,
        /// The canary pool.
        pool: String,
        /// Settings after the call's overrides.
        settings: Box<RolloutSettings>,
        /// Who and why.
        meta: ChangeMeta,
    },
    /// Pause, resume, abort or promote the running rollout.
    RolloutControl {
        /// Service name.
        service: String,
        /// What to do.
        action: RolloutAction,
        /// Who and why.
        meta: ChangeMeta,
    },
    /// The running rollout, else the last one.
    Rollout(String),
    /// The stats sampler took sample `N`: running rollouts judge and act.
    Tick(u64),
    /// Cluster mode: what the store read or reported, to apply here.
    ClusterSync(crate::shared::Update),
    /// A preview token for a pool.
    PreviewToken {
        /// Service name.
        service: String,
        /// Pool name.
        pool: String,
        /// How long it is valid.
        ttl: std::time::Duration,
    },
}

/// The control task's answer.
#[derive(Debug)]
pub enum Reply {
    /// A service after the command.
    Service(ServiceView),
    /// All services.
    Services(ServicesView),
    /// Events, newest first.
    History(Vec<Event>),
    /// The generation now in force, and restart-only settings that changed.
    Reloaded(crate::ReloadReport),
    /// A new preview token.
    PreviewToken(PreviewTokenView),
    /// Where a rollout's smoke requests go.
    SmokePlan(SmokePlan),
    /// A rollout object.
    Rollout(Box<Rollout>),
    /// A tick was handled.
    Ticked,
    /// A `ClusterSync` was applied.
    Synced,
}

/// The smoke requests of a rollout start: each sent to every backend of the canary.
#[derive(Debug, Clone)]
pub struct SmokePlan {
    /// The canary's backends.
    pub backends: Vec<String>,
    /// Their protocol.
    pub protocol: switchyard_config::Protocol,
    /// The health check's `host`, if any.
    pub host: Option<String>,
    /// How long one request may take.
    pub timeout: std::time::Duration,
    /// The requests.
    pub smoke: Vec<switchyard_config::Smoke>,
}

/// `POST /v1/services/{svc}/preview-token` answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreviewTokenView {
    /// The token (cookie `sy_preview` or header `x-switchyard-preview`).
    pub token: String,
    /// The pool it reaches.
    pub pool: String,
    /// RFC 3339 expiry.
    pub expires_at: String,
}

/// A refused command. Nothing changed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlError {
    /// No such service.
    #[error("unknown service \"{0}\"")]
    UnknownService(String),
    /// No such pool in the service.
    #[error("service \"{service}\" has no pool \"{pool}\" (pools: {known})")]
    UnknownPool {
        /// Service.
        service: String,
        /// The pool asked for.
        pool: String,
        /// The pools it has.
        known: String,
    },
    /// The request itself is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// A pool would get traffic with too few healthy backends.
    #[error(
        "refused: pool \"{pool}\" of service \"{service}\" has {healthy} healthy backend(s), fewer than min_healthy = {min}; use \"force\": true to override"
    )]
    Gate {
        /// Service.
        service: String,
        /// The pool.
        pool: String,
        /// Its healthy count.
        healthy: usize,
        /// The service's `min_healthy`.
        min: u32,
    },
    /// Rollback with nothing left to undo.
    #[error("service \"{0}\" has no change left to roll back")]
    NothingToRollBack(String),
    /// `If-Match` named another version.
    #[error("service \"{service}\" is at version {actual}, not {expected}")]
    VersionMismatch {
        /// Service.
        service: String,
        /// The version asked for.
        expected: u64,
        /// The version it has.
        actual: u64,
    },
    /// The config file is invalid; the old config keeps serving.
    #[error("config invalid, old config kept: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
    /// The request does not fit the rollout's state (none running, already one, smoke failed…).
    #[error("{0}")]
    Conflict(String),
    /// The service never had a rollout.
    #[error("service \"{0}\" has had no rollout")]
    NoRollout(String),
    /// The state file could not be written; the change was not made.
    #[error("{0}")]
    Persist(String),
    /// Cluster mode: the store is unreachable; nothing changed.
    #[error("{0}")]
    StoreDown(String),
    /// Cluster mode: another replica's change won the race; applied here, the
    /// command is checked again (never answered as such).
    #[error("the service changed concurrently")]
    Raced,
    /// The control task is gone (shutting down).
    #[error("control task unavailable")]
    Unavailable,
}

/// A command and where its answer goes.
pub(crate) type Envelope = (Command, oneshot::Sender<Result<Reply, ControlError>>);
