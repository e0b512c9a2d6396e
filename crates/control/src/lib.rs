//! switchyard-control owns the one write path. Every traffic change — admin switch,
//! weights, rollback, SIGHUP, file watch, admin reload, and later rollout steps and
//! replicas' changes — is a `Command` applied to the one `Controller`, one at a
//! time under its lock: by the control thread, or (the admin API's changes, when
//! that thread is idle) by the caller's thread:
//! validate → build the new table → persist the state file → publish → reply.
//! On any error the old table and state stay.
//!
//! It depends on config and proxy; never on admin or the binary.

mod command;
mod controller;
mod discovery;
mod handle;
mod health;
mod heap;
mod judge;
mod merge;
mod preview_key;
mod reload;
mod remote;
pub mod rollout;
mod rollout_ctl;
mod rollout_owner;
pub mod shared;
mod shared_apply;
mod smoke;
pub mod state;
mod store;
mod view;

pub use command::{ChangeMeta, Command, ControlError, PreviewTokenView, ReloadSource, Reply, SmokePlan};
pub use controller::{Controller, StartError};
pub use handle::{ControlHandle, spawn};
pub use reload::ReloadReport;
pub use rollout::{Phase, Rollout};
pub use rollout_ctl::RolloutAction;
pub use state::{Event, Kind, StateError};
pub use store::lock as lock_state;
pub use view::{BackendView, PoolView, ReloadOutcome, ServiceView, ServicesView};
