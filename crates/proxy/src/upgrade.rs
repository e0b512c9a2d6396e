//! HTTP/1.1 Upgrade (WebSocket) pass-through. Only `Upgrade: websocket` is
//! tunnelled; any other protocol (`h2c`, ...) is dropped with the hop-by-hop
//! headers and the request forwarded as a plain one. The 101 from the backend goes
//! back to the client, then both upgraded connections are spliced byte for byte.
//! The tunnel counts as `upgraded` on its pool until it closes, stays on its pool
//! after a switch, and — with `drain_timeout` — is closed once its pool has had no
//! weight for that long without a break.

use crate::backend::PoolStats;
use crate::forward::Route;
use crate::headers::has_token;
use crate::routes::Router;
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use switchyard_config::Weight;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// How often a tunnel checks whether its pool still has weight.
const WEIGHT_CHECK: Duration = Duration::from_millis(100);

/// The `Upgrade` value the proxy tunnels.
pub(crate) static WEBSOCKET: HeaderValue = HeaderValue::from_static("websocket");

/// Whether the request asks to switch to WebSocket (`Connection: upgrade` and
/// `websocket` among the `Upgrade` tokens, case-insensitive).
pub(crate) fn is_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, &UPGRADE, "websocket") && has_token(headers, &CONNECTION, "upgrade")
}

/// Puts back the two headers an upgrade needs after hop-by-hop stripping.
pub(crate) fn restore(headers: &mut HeaderMap, upgrade: HeaderValue) {
    headers.insert(UPGRADE, upgrade);
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Counts an open tunnel on its pool until dropped.
pub(crate) struct Open(Arc<PoolStats>);

impl Open {
    /// A tunnel opens on the pool `stats` belongs to.
    pub(crate) fn new(stats: Arc<PoolStats>) -> Open {
        stats.tunnel_opened();
        Open(stats)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.tunnel_closed();
    }
}

/// Where a tunnel belongs, to find its pool's weight in later tables.
pub(crate) struct Tunnel {
    pub(crate) router: Router,
    pub(crate) service: Box<str>,
    pub(crate) pool: Box<str>,
    pub(crate) stats: Arc<PoolStats>,
    pub(crate) drain_timeout: Option<Duration>,
}

impl Tunnel {
    /// The tunnel of a request routed by `route`.
    pub(crate) fn of(router: Router, route: &Route) -> Tunnel {
        Tunnel {
            router,
            service: route.service.name.clone(),
            pool: route.pool().name.clone(),
            stats: route.pool().stats.clone(),
            drain_timeout: route.service.drain_timeout,
        }
    }

    /// Splices the client's and the backend's upgraded connections (hyper's) until
    /// either side closes, or the drain timeout passes after the pool lost its weight.
    pub(crate) fn spawn(self, client: OnUpgrade, backend: OnUpgrade) {
        let open = Open::new(self.stats.clone());
        tokio::spawn(async move {
            let _open = open;
            let (client, backend) = match tokio::try_join!(client, backend) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                    return;
                }
            };
            self.splice(&mut TokioIo::new(client), &mut TokioIo::new(backend)).await;
        });
    }

    /// Copies bytes both ways until either side closes, or the drain timeout passes
    /// after the pool lost its weight.
    pub(crate) async fn splice<A, B>(&self, client: &mut A, backend: &mut B)
    where
        A: AsyncRead + AsyncWrite + Unpin + ?Sized,
        B: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        tokio::select! {
            r = tokio::io::copy_bidirectional(client, backend) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "tunnel ended with an error");
                }
            }
            () = self.drained() => {
                tracing::info!(service = %self.service, pool = %self.pool, "closing upgraded connection: drain_timeout passed");
            }
        }
    }

    /// Resolves once the pool has had no weight for `drain_timeout` without a break:
    /// weight coming back (a rollback during the wait) starts the wait over.
    async fn drained(&self) {
        let Some(timeout) = self.drain_timeout else { return std::future::pending().await };
        let mut tick = tokio::time::interval(WEIGHT_CHECK);
        let mut zero_since: Option<Instant> = None;
        loop {
            let now = tick.tick().await;
            if self.weight() == Weight::ZERO {
                let since = *zero_since.get_or_insert(now);
                if now.duration_since(since) >= timeout {
                    return;
                }
            } else {
                zero_since = None;
            }
        }
    }

    fn weight(&self) -> Weight {
        let table = self.router.load();
        table.service(&self.service).and_then(|s| s.pool(&self.pool)).map_or(Weight::ZERO, |p| p.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::RoutingTable;

    fn config(active: &str) -> switchyard_config::Config {
        let text = format!(
            "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"chat\"\ndrain_timeout = \"10s\"\n[service.traffic]\nactive = \"{active}\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]\n[service.pools.green]\nbackends = [\"127.0.0.1:2\"]\n"
        );
        switchyard_config::parse(&text, std::path::Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_websocket_is_an_upgrade() {
        assert!(is_websocket(&headers(&[("upgrade", "websocket"), ("connection", "Upgrade")])));
        assert!(is_websocket(&headers(&[("upgrade", "WebSocket"), ("connection", "keep-alive, upgrade")])));
        assert!(!is_websocket(&headers(&[("upgrade", "h2c"), ("connection", "Upgrade, HTTP2-Settings")])));
        assert!(!is_websocket(&headers(&[("upgrade", "websocket")])), "needs Connection: upgrade");
        assert!(!is_websocket(&headers(&[("upgrade", "websockets"), ("connection", "upgrade")])));
    }

    /// A rollback during the drain wait restarts it: the tunnel closes only after
    /// a full `drain_timeout` of zero weight.
    #[tokio::test(start_paused = true)]
    async fn drain_wait_restarts_when_weight_comes_back() {
        let cfg = |active| RoutingTable::build(&config(active), None, 1);
        let (publisher, router) = crate::routes::channel(cfg("blue"));
        let blue = router.load().service("chat").and_then(|s| s.pool("blue")).map(|p| p.stats.clone());
        let tunnel = Tunnel {
            router,
            service: "chat".into(),
            pool: "blue".into(),
            stats: blue.unwrap_or_default(),
            drain_timeout: Some(Duration::from_secs(10)),
        };
        let (tx, mut done) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            tunnel.drained().await;
            let _ = tx.send(());
        });
        let step = |secs| tokio::time::sleep(Duration::from_secs(secs));
        step(5).await;
        publisher.publish(cfg("green")); // blue loses its weight at t=5
        step(8).await;
        publisher.publish(cfg("blue")); // back at t=13, before the 10 s are up
        step(1).await;
        publisher.publish(cfg("green")); // lost again at t=14
        step(9).await; // t=23: 9 s of zero weight since the last loss
        assert!(done.try_recv().is_err(), "closed although the pool had weight 9 s ago");
        step(2).await; // t=25: 11 s
        assert!(done.try_recv().is_ok(), "not closed after a full drain_timeout of zero weight");
    }
}
