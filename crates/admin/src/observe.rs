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

/// Prometheus text: the recorder's series, then the gauges that mirror the live
/// table (in-flight counts, weights, backend health), written from it here.
pub fn metrics(handle: Option<&PrometheusHandle>, router: &Router) -> Resp {
    let Some(handle) = handle else {
        return respond::error(StatusCode::NOT_FOUND, "metrics are not enabled in this process");
    };
    let table = router.load();
    let mut live = switchyard_metrics::Live::default();
    let mut gauges = switchyard_metrics::TableGauges::default();
    for svc in table.services() {
        for pool in svc.pools.iter() {
            gauges.pool(&svc.name, &pool.name, pool.stats.inflight(), pool.weight.as_percent());
            for b in pool.backends.iter() {
                gauges.backend(&svc.name, &pool.name, b.address(), b.is_healthy());
            }
            live.add(&svc.name, &pool.name, pool.backends.iter().map(|b| b.address()));
        }
    }
    drop(table);
    // Series of pools and backends a reload removed are not shown.
    let mut text = live.filter(&handle.render());
    gauges.write_to(&mut text);
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}

/// The parameters of a drain call.
#[derive(Debug, PartialEq, Eq)]
struct DrainQuery {
    pool: String,
    wait: Option<Duration>,
}

/// Parses `pool=P[&wait=D]` (percent-decoded); `Err` is a 400 message.
fn drain_query(query: Option<&str>) -> Result<DrainQuery, String> {
    let [pool, wait] = crate::query::params("drain", query, ["pool", "wait"])?;
    let Some(pool) = pool.filter(|p| !p.is_empty()) else {
        return Err("drain needs ?pool=POOL".into());
    };
    let wait = match wait.as_deref().map(switchyard_config::parse_duration) {
        None => None,
        Some(Ok(d)) if d <= MAX_WAIT => Some(d),
        Some(Ok(_)) => return Err("wait may be at most 1h".into()),
        Some(Err(e)) => return Err(format!("wait: {e}")),
    };
    Ok(DrainQuery { pool, wait })
}

/// `GET /v1/services/{svc}/drain?pool=P[&wait=D]`.
pub async fn drain(router: &Router, service: &str, query: Option<&str>) -> Resp {
    let (pool, wait) = match drain_query(query) {
        Ok(q) => (q.pool, q.wait),
        Err(message) => return respond::error(StatusCode::BAD_REQUEST, message),
    };
    let pool = pool.as_str();
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn drain_query_is_percent_decoded_and_strict() {
        let q = drain_query(Some("pool=bl%75e&wait=1%30s")).unwrap();
        assert_eq!(q, DrainQuery { pool: "blue".into(), wait: Some(Duration::from_secs(10)) });
        assert_eq!(drain_query(Some("pool=a+b")).unwrap().pool, "a b");
        let e = drain_query(Some("pool=blue&colour=red&x")).unwrap_err();
        assert!(e.contains("\"colour\"") && e.contains("\"x\""), "{e}");
        let e = drain_query(Some("pool=blue&pool=green")).unwrap_err();
        assert!(e.contains("pool given more than once"), "{e}");
        assert!(drain_query(Some("wait=1s&wait=2s&pool=b")).unwrap_err().contains("wait given more than once"));
        assert!(drain_query(None).unwrap_err().contains("needs ?pool"));
        assert!(drain_query(Some("pool=")).unwrap_err().contains("needs ?pool"));
        assert!(drain_query(Some("pool=b&wait=2h")).unwrap_err().contains("at most 1h"));
        assert!(drain_query(Some("pool=b&wait=soon")).unwrap_err().starts_with("wait:"));
    }
}
