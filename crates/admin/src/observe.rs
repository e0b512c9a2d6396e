//! Read-only views of the live table: `/metrics` and the drain endpoint.

use crate::respond::{self, Resp};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use std::time::{Duration, Instant};
use switchyard_metrics::PrometheusHandle;
use switchyard_proxy::Router;

/// Longest `wait` a drain call accepts.
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// How often a waiting drain call looks at the counter (off the request path).
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// Prometheus text. Gauges that mirror live state (in-flight counts, backend
/// health) are set here, at scrape time, so the request path never touches them.
pub fn metrics(handle: Option<&PrometheusHandle>, router: &Router) -> Resp {
    let Some(handle) = handle else {
        return respond::error(StatusCode::NOT_FOUND, "metrics are not enabled in this process");
    };
    let table = router.load();
    let mut live = switchyard_metrics::Live::default();
    for svc in table.services() {
        for pool in svc.pools.iter() {
            switchyard_metrics::inflight(&svc.name, &pool.name, pool.stats.inflight());
            for b in pool.backends.iter() {
                switchyard_metrics::backend_healthy(&svc.name, &pool.name, b.address(), b.is_healthy());
            }
            live.add(&svc.name, &pool.name, pool.backends.iter().map(|b| b.address()));
        }
    }
    drop(table);
    // Series of pools and backends a reload removed are not shown.
    let mut r = Response::new(Full::new(Bytes::from(live.filter(&handle.render()))));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}

/// `GET /v1/services/{svc}/drain?pool=P[&wait=D]`.
pub async fn drain(router: &Router, service: &str, query: Option<&str>) -> Resp {
    let param =
        |k: &str| query.unwrap_or("").split('&').find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')));
    let Some(pool) = param("pool").filter(|p| !p.is_empty()) else {
        return respond::error(StatusCode::BAD_REQUEST, "drain needs ?pool=POOL");
    };
    let wait = match param("wait").map(switchyard_config::parse_duration) {
        None => None,
        Some(Ok(d)) if d <= MAX_WAIT => Some(d),
        Some(Ok(_)) => return respond::error(StatusCode::BAD_REQUEST, "wait may be at most 1h"),
        Some(Err(e)) => return respond::error(StatusCode::BAD_REQUEST, format!("wait: {e}")),
    };
    let stats = {
        let table = router.load();
        let Some(svc) = table.service(service) else {
            return respond::error(StatusCode::NOT_FOUND, format!("unknown service \"{service}\""));
        };
        let Some(p) = svc.pool(pool) else {
            return respond::error(StatusCode::NOT_FOUND, format!("service \"{service}\" has no pool \"{pool}\""));
        };
        p.stats.clone()
    };
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        let (inflight, upgraded) = (stats.inflight(), stats.upgraded());
        // Drained: no request in flight and no upgraded (WebSocket) connection open.
        let drained = inflight == 0 && upgraded == 0;
        let body = serde_json::json!({ "pool": pool, "inflight": inflight, "upgraded": upgraded, "drained": drained });
        match deadline {
            Some(d) if !drained && Instant::now() < d => tokio::time::sleep(DRAIN_POLL).await,
            Some(_) if !drained => return respond::json(StatusCode::REQUEST_TIMEOUT, &body),
            _ => return respond::json(StatusCode::OK, &body),
        }
    }
}
