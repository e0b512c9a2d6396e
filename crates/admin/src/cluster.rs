//! Cluster mode in the admin API (SPEC §4, §8): `GET /v1/cluster`, the
//! `/healthz` detail while the store is unreachable, and `wait_replicas` on
//! mutating calls (200 once every replica alive at commit time applied the
//! version, else 202 with who is pending and who rejected it).

use crate::respond::{self, Resp};
use http::StatusCode;
use std::time::Duration;
use switchyard_control::shared::ClusterStatus;
use switchyard_control::{ControlError, ServiceView};
use tokio::sync::watch;

/// The longest `wait_replicas` honoured.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// `GET /v1/cluster`.
pub(crate) fn status(cluster: Option<&watch::Receiver<ClusterStatus>>) -> Resp {
    match cluster {
        Some(rx) => respond::json(StatusCode::OK, &*rx.borrow()),
        None => respond::json(StatusCode::OK, &ClusterStatus::none()),
    }
}

/// `/healthz`: `ok`, plus a line while the store is unreachable.
pub(crate) fn health(cluster: Option<&watch::Receiver<ClusterStatus>>) -> Resp {
    let detail = cluster.and_then(|rx| {
        let s = rx.borrow();
        (!s.connected).then(|| {
            let since = s.unreachable_since.as_deref().unwrap_or("start");
            format!("cluster: store unreachable since {since}\n")
        })
    });
    match detail {
        None => respond::text(StatusCode::OK, "ok\n"),
        Some(line) => respond::owned_text(StatusCode::OK, format!("ok\n{line}")),
    }
}

/// `"wait_replicas": "5s"` → a bounded duration; `Err` is a 400 message.
pub(crate) fn wait_of(text: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(t) = text else { return Ok(None) };
    let d = switchyard_config::parse_duration(t).map_err(|e| format!("wait_replicas: {e}"))?;
    if d > MAX_WAIT {
        return Err(format!("wait_replicas: at most {}s", MAX_WAIT.as_secs()));
    }
    Ok(Some(d))
}

/// The answer to a change: the service, after waiting for the replicas when asked.
pub(crate) async fn settle(
    cluster: Option<&watch::Receiver<ClusterStatus>>,
    wait: Option<Duration>,
    result: Result<ServiceView, ControlError>,
    ok: StatusCode,
) -> Resp {
    let view = match result {
        Ok(v) => v,
        Err(e) => return respond::refused(&e),
    };
    let (Some(rx), Some(wait)) = (cluster, wait) else { return with_status(respond::service(&view), ok) };
    let (pending, rejected) = wait_for(rx.clone(), &view.name, view.version, wait).await;
    if pending.is_empty() && rejected.is_empty() {
        return with_status(respond::service(&view), ok);
    }
    let body = serde_json::json!({
        "committed": true, "complete": false, "pending": pending, "rejected": rejected,
        "version": view.version, "service": view,
    });
    let mut r = respond::json(StatusCode::ACCEPTED, &body);
    if let Ok(tag) = http::HeaderValue::try_from(format!("\"{}\"", view.version)) {
        r.headers_mut().insert(http::header::ETAG, tag);
    }
    r
}

fn with_status(mut r: Resp, status: StatusCode) -> Resp {
    *r.status_mut() = status;
    r
}

/// Waits until every replica alive now has applied `version` of `service` (or
/// rejected it, or left); returns those still pending and those that rejected it.
async fn wait_for(
    mut rx: watch::Receiver<ClusterStatus>,
    service: &str,
    version: u64,
    wait: Duration,
) -> (Vec<String>, Vec<String>) {
    let deadline = tokio::time::Instant::now() + wait;
    let alive: Vec<String> = rx.borrow_and_update().replicas.iter().map(|r| r.name.clone()).collect();
    loop {
        let (mut pending, mut rejected) = (vec![], vec![]);
        {
            let s = rx.borrow_and_update();
            for name in &alive {
                let Some(r) = s.replicas.iter().find(|r| &r.name == name) else { continue };
                if r.applied.rejected.get(service).is_some_and(|x| x.version >= version) {
                    rejected.push(name.clone());
                } else if r.applied.applied.get(service).is_none_or(|v| *v < version) {
                    pending.push(name.clone());
                }
            }
        }
        if pending.is_empty() {
            return (pending, rejected);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => return (pending, rejected),
        }
    }
}
