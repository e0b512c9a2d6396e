//! A backend registering itself for discovery (SPEC §8): its key
//! `discovery/SVC/POOL/HOST:PORT` under its own lease, kept alive while the
//! process lives. Killed, its lease expires and every replica drops it.

use crate::keys::Keys;
use etcd_client::{Client, ConnectOptions, PutOptions};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Where and as what a backend registers.
#[derive(Debug, Clone)]
pub struct Registration {
    /// etcd endpoints.
    pub endpoints: Vec<String>,
    /// The cluster's key prefix.
    pub prefix: String,
    /// Service.
    pub service: String,
    /// Pool.
    pub pool: String,
    /// `HOST:PORT` the proxies should send to.
    pub address: String,
    /// How long the key outlives the process.
    pub ttl: Duration,
}

/// A running registration: `leave` revokes its lease (the app is stopping).
pub struct Registered {
    current: Arc<Mutex<Option<(Client, i64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Registered {
    /// Stops renewing and revokes the lease: every replica drops the backend now
    /// rather than when the lease runs out.
    pub async fn leave(self) {
        self.task.abort();
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((mut client, lease)) = current {
            match tokio::time::timeout(Duration::from_secs(2), client.lease_revoke(lease)).await {
                Ok(Ok(_)) => tracing::info!("left discovery (lease revoked)"),
                _ => tracing::warn!("could not revoke the discovery lease; it runs out by itself"),
            }
        }
    }
}

/// Keeps the registration alive (registering again after any failure) until `leave`.
pub fn keep_registered(r: Registration) -> Registered {
    let current = Arc::new(Mutex::new(None));
    let shared = current.clone();
    let task = tokio::spawn(async move {
        let key = Keys::new(&r.prefix).discovery(&r.service, &r.pool, &r.address);
        loop {
            if let Err(e) = once(&r, &key, &shared).await {
                tracing::warn!(%key, "discovery registration lost ({e}); registering again");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Registered { current, task }
}

async fn once(r: &Registration, key: &str, current: &Mutex<Option<(Client, i64)>>) -> Result<(), etcd_client::Error> {
    let options =
        ConnectOptions::new().with_connect_timeout(Duration::from_secs(2)).with_timeout(Duration::from_secs(5));
    let mut client = Client::connect(&r.endpoints, Some(options)).await?;
    let ttl = i64::try_from(r.ttl.as_secs()).unwrap_or(5).max(1);
    let lease = client.lease_grant(ttl, None).await?.id();
    let meta = serde_json::json!({ "registered_by": "switchyard app" }).to_string();
    client.put(key, meta, Some(PutOptions::new().with_lease(lease))).await?;
    *current.lock().unwrap_or_else(PoisonError::into_inner) = Some((client.clone(), lease));
    tracing::info!(%key, ttl, "registered for discovery");
    let (mut keeper, mut alive) = client.lease_keep_alive(lease).await?;
    let mut beat = tokio::time::interval(r.ttl / 3);
    loop {
        beat.tick().await;
        keeper.keep_alive().await?;
        match alive.message().await? {
            Some(k) if k.ttl() > 0 => {}
            _ => return Err(etcd_client::Error::LeaseKeepAliveError("lease expired".into())),
        }
    }
}
