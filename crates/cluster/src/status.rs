//! What `GET /v1/cluster`, `/healthz` and `wait_replicas` read: whether the store
//! answers (since when not), and the live replicas as their keys say.

use switchyard_control::shared::{ClusterStatus, ReplicaView};
use tokio::sync::watch;

/// The write side of the cluster status.
pub(crate) struct Status {
    tx: watch::Sender<ClusterStatus>,
}

impl Status {
    /// Not connected yet (a replica starts from its state file and keeps trying).
    pub(crate) fn new(name: &str) -> (Status, watch::Receiver<ClusterStatus>) {
        let first = ClusterStatus {
            store: "etcd",
            connected: false,
            unreachable_since: Some(now()),
            name: Some(name.to_owned()),
            replicas: vec![],
        };
        switchyard_metrics::cluster_connected(false);
        let (tx, rx) = watch::channel(first);
        (Status { tx }, rx)
    }

    /// The store answers and this replica has read it.
    pub(crate) fn up(&self) {
        switchyard_metrics::cluster_connected(true);
        self.tx.send_modify(|s| {
            if !s.connected {
                tracing::info!("cluster: store reachable, in step");
            }
            s.connected = true;
            s.unreachable_since = None;
        });
    }

    /// The store stopped answering (or never did): keep serving the last state.
    pub(crate) fn down(&self, why: &str) {
        switchyard_metrics::cluster_connected(false);
        self.tx.send_modify(|s| {
            if s.connected || s.unreachable_since.is_none() {
                tracing::error!(
                    "cluster: store unreachable ({why}); serving the last state, changes refused until it is back"
                );
                s.unreachable_since = Some(now());
            } else {
                tracing::debug!("cluster: store still unreachable ({why})");
            }
            s.connected = false;
        });
    }

    /// Every replica, as a full read found them.
    pub(crate) fn replace_replicas(&self, mut replicas: Vec<ReplicaView>) {
        replicas.sort_by(|a, b| a.name.cmp(&b.name));
        self.tx.send_modify(|s| s.replicas = replicas);
    }

    /// One replica key put (`Some`) or gone (`None`: left, or its lease expired).
    pub(crate) fn set_replica(&self, name: &str, view: Option<ReplicaView>) {
        self.tx.send_modify(|s| {
            let at = s.replicas.binary_search_by(|r| r.name.as_str().cmp(name));
            match (at, view) {
                (Ok(i), Some(v)) => s.replicas[i] = v,
                (Err(i), Some(v)) => s.replicas.insert(i, v),
                (Ok(i), None) => {
                    tracing::info!(replica = name, "cluster: replica left");
                    s.replicas.remove(i);
                }
                (Err(_), None) => {}
            }
        });
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
