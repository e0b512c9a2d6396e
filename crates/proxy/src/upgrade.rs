//! HTTP/1.1 Upgrade (WebSocket) pass-through. The 101 from the backend goes back
//! to the client, then both upgraded connections are spliced byte for byte. The
//! tunnel counts as `upgraded` on its pool until it closes, stays on its pool
//! after a switch, and — with `drain_timeout` — is closed that long after its
//! pool has lost all its weight.

use crate::backend::PoolStats;
use crate::routes::Router;
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use switchyard_config::Weight;

/// How often a tunnel checks whether its pool still has weight.
const WEIGHT_CHECK: Duration = Duration::from_millis(100);

/// Whether the request asks to switch protocols (`Connection: upgrade` + `Upgrade`).
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))))
}

/// Puts back the two headers an upgrade needs after hop-by-hop stripping.
pub(crate) fn restore(headers: &mut HeaderMap, upgrade: HeaderValue) {
    headers.insert(UPGRADE, upgrade);
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Counts an open tunnel on its pool until dropped.
struct Open(Arc<PoolStats>);

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
    /// Splices the client's and the backend's upgraded connections until either
    /// side closes, or the drain timeout passes after the pool lost its weight.
    pub(crate) fn spawn(self, client: OnUpgrade, backend: OnUpgrade) {
        self.stats.tunnel_opened();
        let open = Open(self.stats.clone());
        tokio::spawn(async move {
            let _open = open;
            let (client, backend) = match tokio::try_join!(client, backend) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                    return;
                }
            };
            let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
            tokio::select! {
                r = tokio::io::copy_bidirectional(&mut client, &mut backend) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "tunnel ended with an error");
                    }
                }
                () = self.drained() => {
                    tracing::info!(service = %self.service, pool = %self.pool, "closing upgraded connection: drain_timeout passed");
                }
            }
        });
    }

    /// Resolves `drain_timeout` after the pool was first seen with no weight.
    async fn drained(&self) {
        let Some(timeout) = self.drain_timeout else { return std::future::pending().await };
        let mut tick = tokio::time::interval(WEIGHT_CHECK);
        loop {
            tick.tick().await;
            if self.weight() == Weight::ZERO {
                tokio::time::sleep(timeout).await;
                if self.weight() == Weight::ZERO {
                    return;
                }
            }
        }
    }

    fn weight(&self) -> Weight {
        let table = self.router.load();
        table.service(&self.service).and_then(|s| s.pool(&self.pool)).map_or(Weight::ZERO, |p| p.weight)
    }
}
