//! switchyard-cluster owns cluster mode (SPEC §8): the etcd client, the key
//! layout, the apply loop (read at a revision, apply through the control path,
//! watch from the next), this replica's registration under a lease, the
//! compare-and-swap commit the control thread calls, and the cluster status the
//! admin API shows. Traffic logic stays in switchyard-control; this crate only
//! moves documents between etcd and the one control path.

mod keys;
mod register;
mod status;
mod store;
mod sync;

pub use keys::{Key, Keys};
pub use register::{Registered, Registration, keep_registered};
pub use store::{EtcdStore, Link};

use std::sync::Arc;
use switchyard_control::shared::{Applied, ClusterStatus};
use switchyard_control::{ControlHandle, Controller};
use tokio::sync::watch;

/// Cluster mode, wired before the control task starts and run after.
pub struct Cluster {
    link: Arc<Link>,
    applied: watch::Receiver<Applied>,
    name: String,
}

impl Cluster {
    /// Gives the controller its store (commits go through etcd from now on). The
    /// calls run on the current tokio runtime.
    pub fn attach(config: &switchyard_config::Cluster, name: String, controller: &mut Controller) -> Cluster {
        let link = Link::new(Keys::new(&config.prefix), name.clone(), tokio::runtime::Handle::current());
        let applied = controller.attach(Box::new(EtcdStore(link.clone())));
        Cluster { link, applied, name }
    }

    /// Starts the apply loop (it keeps trying while etcd is unreachable); the
    /// receiver follows the cluster status.
    pub fn run(
        self,
        config: &switchyard_config::Cluster,
        admin: std::net::SocketAddr,
        control: ControlHandle,
    ) -> watch::Receiver<ClusterStatus> {
        let (status, rx) = status::Status::new(&self.name);
        let ctx = sync::Ctx {
            link: self.link,
            endpoints: config.etcd.clone(),
            name: self.name,
            admin: admin.to_string(),
            lease_ttl: config.lease_ttl,
            control,
            applied: self.applied,
            status,
        };
        tokio::spawn(sync::run(ctx));
        rx
    }
}

/// This replica's name: `[cluster] name`, else hostname:admin port.
pub fn replica_name(config: &switchyard_config::Cluster, admin: std::net::SocketAddr) -> String {
    if let Some(n) = &config.name {
        return n.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "switchyard".into());
    format!("{host}:{}", admin.port())
}
