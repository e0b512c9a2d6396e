//! Active health checks: one probe task per backend of every service that has
//! `[service.health]`. A task flips its backend's atomic health flag after
//! `healthy_threshold` successes or `unhealthy_threshold` failures in a row; the
//! hot path reads the flag, so a verdict needs no table rebuild and no lock.

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::sync::Arc;
use switchyard_config::{Config, Health, Protocol};
use switchyard_proxy::{Backend, RoutingTable};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

type Key = (String, String, String);

const USER_AGENT: &str = "switchyard-health";

struct Probe {
    backend: Arc<Backend>,
    health: Health,
    protocol: Protocol,
    task: JoinHandle<()>,
}

/// The running probes, kept in line with the current table.
pub(crate) struct HealthChecks {
    runtime: Option<Handle>,
    probes: HashMap<Key, Probe>,
}

impl HealthChecks {
    /// Probes run on the runtime current at creation; without one, none run.
    pub(crate) fn new() -> HealthChecks {
        HealthChecks { runtime: Handle::try_current().ok(), probes: HashMap::new() }
    }

    /// Starts probes for new backends, restarts those whose settings or backend
    /// changed, stops those no longer configured.
    pub(crate) fn reconcile(&mut self, table: &RoutingTable, config: &Config) {
        let Some(rt) = &self.runtime else { return };
        let mut wanted: HashMap<Key, (Arc<Backend>, Health, Protocol)> = HashMap::new();
        for svc in &config.services {
            let (Some(health), Some(route)) = (&svc.health, table.service(&svc.name)) else { continue };
            for pool in route.pools.iter() {
                let protocol = svc.pool(&pool.name).map_or(Protocol::Http1, |p| p.protocol);
                for b in pool.backends.iter() {
                    let key = (svc.name.clone(), pool.name.to_string(), b.address().to_owned());
                    wanted.insert(key, (b.clone(), health.clone(), protocol));
                }
            }
        }
        self.probes.retain(|key, probe| {
            let keep = wanted.get(key).is_some_and(|(b, h, proto)| {
                Arc::ptr_eq(b, &probe.backend) && *h == probe.health && *proto == probe.protocol
            });
            if !keep {
                probe.task.abort();
            }
            keep
        });
        for (key, (backend, health, protocol)) in wanted {
            if self.probes.contains_key(&key) {
                continue;
            }
            let task = rt.spawn(probe_loop(key.clone(), backend.clone(), health.clone(), protocol));
            self.probes.insert(key, Probe { backend, health, protocol, task });
        }
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        for p in self.probes.values() {
            p.task.abort();
        }
    }
}

async fn probe_loop(key: Key, backend: Arc<Backend>, health: Health, protocol: Protocol) {
    let (service, pool, address) = key;
    let mut ticks = tokio::time::interval(health.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut successes, mut failures) = (0u32, 0u32);
    loop {
        ticks.tick().await;
        let outcome = match tokio::time::timeout(health.timeout, probe(&address, protocol, &health)).await {
            Err(_) => Err(format!("no answer within {:?}", health.timeout)),
            Ok(r) => r,
        };
        match outcome {
            Ok(()) => {
                backend.connect_ok();
                (successes, failures) = (successes.saturating_add(1), 0);
                if successes >= health.healthy_threshold && backend.set_healthy(true) {
                    tracing::info!(%service, %pool, backend = %address, "backend healthy");
                }
            }
            Err(why) => {
                (successes, failures) = (0, failures.saturating_add(1));
                if failures >= health.unhealthy_threshold && backend.set_healthy(false) {
                    tracing::warn!(%service, %pool, backend = %address, %why, "backend unhealthy");
                }
            }
        }
    }
}

/// One probe on a fresh connection (the question is whether the backend accepts
/// them), in the pool's protocol. Any 2xx or 3xx is a success.
async fn probe(address: &str, protocol: Protocol, health: &Health) -> Result<(), String> {
    let host = health.host.as_deref().unwrap_or(address);
    let status = fetch_status(address, protocol, host, &health.path).await?;
    if status.is_success() || status.is_redirection() { Ok(()) } else { Err(format!("status {status}")) }
}

/// A GET of `path` on a fresh connection to `address`, in the pool's protocol:
/// HTTP/1.1, or HTTP/2 with prior knowledge for h2c pools (gRPC servers speak
/// nothing else). The status that came back, or what went wrong.
pub(crate) async fn fetch_status(
    address: &str,
    protocol: Protocol,
    host: &str,
    path: &str,
) -> Result<StatusCode, String> {
    let stream = TcpStream::connect(address).await.map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(stream);
    let status = match protocol {
        Protocol::Http1 => {
            let (mut send, conn) = http1::handshake(io).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let req = Request::get(path)
                .header(header::HOST, host)
                .header(header::USER_AGENT, USER_AGENT)
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            send.send_request(req).await.map_err(|e| e.to_string())?.status()
        }
        Protocol::H2c => {
            let (mut send, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            // `:authority` comes from the URI; the connection is already to `address`.
            let req = Request::get(format!("http://{host}{path}"))
                .header(header::USER_AGENT, USER_AGENT)
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            send.send_request(req).await.map_err(|e| e.to_string())?.status()
        }
    };
    Ok(status)
}
