//! The cluster store as the control path sees it (SPEC §8): what one service's
//! shared document holds, what a replica reports, and the port the cluster crate
//! plugs etcd into. Control never talks to etcd itself.

use crate::rollout::Rollout;
use crate::state::{Event, ServiceState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchyard_config::Traffic;

/// `PREFIX/services/SVC`: one service's traffic, changed by one atomic write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedDoc {
    /// Incremented by exactly one on every change.
    pub version: u64,
    /// The traffic in force.
    pub traffic: Traffic,
    /// The running progressive rollout, or the last one.
    #[serde(default)]
    pub rollout: Option<Box<Rollout>>,
    /// Beyond SPEC's three fields: the rollback stack, so that a rollback on any
    /// replica goes where it would on the replica that made the change.
    #[serde(default)]
    pub undo: Vec<std::sync::Arc<Traffic>>,
}

impl SharedDoc {
    /// The document of a service's state.
    pub fn of(st: &ServiceState) -> SharedDoc {
        SharedDoc {
            version: st.version,
            traffic: st.traffic.clone(),
            rollout: st.rollout.clone(),
            undo: st.undo.clone(),
        }
    }
}

/// One service's key as the store holds it.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Service name.
    pub service: String,
    /// The key's `mod_revision`.
    pub revision: i64,
    /// The document, or why its value could not be read.
    pub doc: Result<SharedDoc, String>,
    /// History events read with it (any order; those the replica has are skipped).
    pub events: Vec<Event>,
}

/// What the store says to a commit.
#[derive(Debug)]
pub enum Commit {
    /// Written at this revision.
    Done(i64),
    /// The key moved since it was read; here it is as it now is (`None`: deleted).
    Lost(Option<Remote>),
}

/// What the store read or saw change, for the control path to apply.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// A full read: every service key the store has (services of this replica's
    /// config it lacks are seeded from local state), and every discovered backend.
    pub full: bool,
    /// The keys read or changed.
    pub remotes: Vec<Remote>,
    /// Discovery keys read, put or deleted.
    pub discovery: Vec<Found>,
    /// `PREFIX/preview-key`, when read or put.
    pub preview_key: Option<Vec<u8>>,
    /// `rollout-owner/SVC` keys read or changed: (service, holder; `None`: gone).
    pub owners: Vec<(String, Option<String>)>,
}

/// A `discovery/SVC/POOL/HOST:PORT` key.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Service.
    pub service: String,
    /// Pool.
    pub pool: String,
    /// `HOST:PORT`.
    pub address: String,
    /// Put (true) or deleted: its lease expired, or the instance left.
    pub present: bool,
}

/// A change this replica could not apply (SPEC §8 `rejected`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// The version refused.
    pub version: u64,
    /// Why.
    pub error: String,
}

/// What this replica has applied, as its `replicas/NAME` key says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The config generation in force.
    pub generation: u64,
    /// Per service, the version in force.
    pub applied: BTreeMap<String, u64>,
    /// Per service, the latest version refused.
    pub rejected: BTreeMap<String, Rejected>,
}

/// The cluster store, as the control thread uses it. Calls block (with a bound).
pub trait SharedStore: Send + Sync {
    /// Whether the store answers and this replica has read it since it last
    /// (re)connected: changes are refused with 503 otherwise.
    fn ready(&self) -> bool;
    /// Writes `doc` and `events` for `service` if its key is still at `expected`
    /// (`mod_revision`; 0: the key must not exist), deleting history older than
    /// `keep_from`. `Err` when the store cannot be reached.
    fn commit(
        &self,
        service: &str,
        expected: i64,
        doc: &SharedDoc,
        events: &[Event],
        keep_from: u64,
    ) -> Result<Commit, String>;
    /// Stores `local` as the cluster's preview token key unless one is stored
    /// already (create-only); returns the one stored.
    fn share_preview_key(&self, local: &[u8]) -> Result<Vec<u8>, String>;
    /// This replica's name.
    fn replica(&self) -> &str;
    /// Takes `rollout-owner/SVC` under this replica's lease: `force` whatever
    /// holds it, else only when nobody does; whether this replica holds it now.
    fn claim_rollout(&self, service: &str, force: bool) -> Result<bool, String>;
}

/// One replica as `GET /v1/cluster` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaView {
    /// Its name.
    pub name: String,
    /// Its admin API address.
    pub admin: String,
    /// What it applied.
    #[serde(flatten)]
    pub applied: Applied,
}

/// `GET /v1/cluster`, and what `/healthz` and `wait_replicas` read.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// `etcd` or `none`.
    pub store: &'static str,
    /// Whether the store answers (and was read since the last reconnect).
    pub connected: bool,
    /// RFC 3339 time the store stopped answering, while it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable_since: Option<String>,
    /// This replica's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The live replicas, by name.
    pub replicas: Vec<ReplicaView>,
}

impl ClusterStatus {
    /// One proxy without a store.
    pub fn none() -> ClusterStatus {
        ClusterStatus { store: "none", connected: false, unreachable_since: None, name: None, replicas: vec![] }
    }
}
