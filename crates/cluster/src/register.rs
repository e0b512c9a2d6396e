//! A backend registering itself for discovery (SPEC §8): its key
//! `discovery/SVC/POOL/HOST:PORT` under its own lease, kept alive while the
//! process lives. Killed, its lease expires and every replica drops it.

use crate::keys::Keys;
use etcd_client::{Client, ConnectOptions, PutOptions};
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

/// Keeps the registration alive forever, registering again after any failure.
pub async fn keep_registered(r: Registration) {
    let key = Keys::new(&r.prefix).discovery(&r.service, &r.pool, &r.address);
    loop {
        if let Err(e) = once(&r, &key).await {
            tracing::warn!(%key, "discovery registration lost ({e}); registering again");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn once(r: &Registration, key: &str) -> Result<(), etcd_client::Error> {
    let options =
        ConnectOptions::new().with_connect_timeout(Duration::from_secs(2)).with_timeout(Duration::from_secs(5));
    let mut client = Client::connect(&r.endpoints, Some(options)).await?;
    let ttl = i64::try_from(r.ttl.as_secs()).unwrap_or(5).max(1);
    let lease = client.lease_grant(ttl, None).await?.id();
    let meta = serde_json::json!({ "registered_by": "switchyard app" }).to_string();
    client.put(key, meta, Some(PutOptions::new().with_lease(lease))).await?;
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
