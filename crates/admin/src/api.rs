//! The routes of the admin API (SPEC §4): parse, authorize, call the control
//! handle, answer. No traffic logic lives here.

use crate::auth::{Caller, Tokens};
use crate::respond::{self, Resp};
use crate::{guard, observe, stats, ui};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use switchyard_config::{Role, Weight};
use switchyard_control::shared::ClusterStatus;
use switchyard_control::{ChangeMeta, ControlHandle, ReloadSource};
use switchyard_metrics::PrometheusHandle;
use switchyard_proxy::Router;
use tokio::sync::watch;

/// Largest request body the admin API reads.
const MAX_BODY: usize = 64 * 1024;

/// What every admin request can reach.
pub struct AdminState {
    /// The one write path.
    pub control: ControlHandle,
    /// Who may do what; replaced when a reload brings new token files.
    pub tokens: ArcSwap<Tokens>,
    /// Read side of the live table (drain, metrics gauges).
    pub router: Router,
    /// The Prometheus recorder, when installed.
    pub metrics: Option<PrometheusHandle>,
    /// Cluster mode: the store's status and the replicas (SPEC §8).
    pub cluster: Option<watch::Receiver<ClusterStatus>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    #[serde(default)]
    wait_replicas: Option<String>,
    pool: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightsBody {
    #[serde(default)]
    wait_replicas: Option<String>,
    weights: BTreeMap<String, Weight>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    pool: String,
    #[serde(default)]
    ttl: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    wait_replicas: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    force: bool,
}

/// Answers one admin request.
pub async fn handle(state: &AdminState, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    if let Err((status, message)) = browser_safety(state, &req, &segments) {
        return respond::error(status, message);
    }
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["healthz"]) => return crate::cluster::health(state.cluster.as_ref()),
        (Method::GET, ["metrics"]) => return observe::metrics(state.metrics.as_ref(), &state.router),
        (_, ["ui", asset @ ..]) => return ui::serve(&method, asset, req.uri().query(), req.headers()),
        (_, ["v1", ..]) => {}
        _ => return respond::error(StatusCode::NOT_FOUND, format!("no such endpoint {path}")),
    }
    let auth = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let Some(caller) = state.tokens.load().check(auth) else {
        return respond::error(StatusCode::UNAUTHORIZED, "missing or unknown bearer token");
    };
    if method != Method::GET && caller.role != Role::Operator {
        return respond::error(StatusCode::FORBIDDEN, format!("token \"{}\" is read-only", caller.name));
    }
    let c = &state.control;
    match (method, &segments[1..]) {
        (Method::GET, ["whoami"]) => {
            let actor = (!state.tokens.load().is_open()).then_some(caller.name.as_str());
            respond::json(StatusCode::OK, &serde_json::json!({ "actor": actor, "role": caller.role.as_str() }))
        }
        (Method::GET, ["cluster"]) => crate::cluster::status(state.cluster.as_ref()),
        (Method::GET, ["services"]) => match c.services().await {
            Ok(v) => respond::json(StatusCode::OK, &v),
            Err(e) => respond::refused(&e),
        },
        (Method::GET, ["services", svc]) => answer(c.service(svc).await),
        (Method::GET, ["services", svc, "drain"]) => observe::drain(&state.router, svc, req.uri().query()).await,
        (Method::GET, ["services", svc, "rollout"]) => crate::rollout::get(c, svc).await,
        (Method::POST, ["services", svc, "rollout", action]) => {
            let (svc, action) = ((*svc).to_owned(), (*action).to_owned());
            crate::rollout::control(state, &caller, &svc, &action, req)
                .await
                .unwrap_or_else(|m| respond::error(StatusCode::BAD_REQUEST, m))
        }
        (Method::GET, ["services", svc, "stats"]) => stats::stats(&state.router, svc, req.uri().query()),
        (Method::GET, ["services", svc, "history"]) => match c.history(svc).await {
            Ok(events) => respond::json(StatusCode::OK, &serde_json::json!({ "events": events })),
            Err(e) => respond::refused(&e),
        },
        (Method::POST, ["services", svc, action]) => {
            let svc = (*svc).to_owned();
            let action = (*action).to_owned();
            mutate(state, &caller, &svc, &action, req).await
        }
        (Method::POST, ["reload"]) => match c.reload(ReloadSource::Admin).await {
            Ok(report) => respond::json(StatusCode::OK, &report),
            Err(e) => respond::refused(&e),
        },
        (
            _,
            ["services"]
            | ["services", _]
            | ["services", _, _]
            | ["services", _, "rollout", _]
            | ["reload"]
            | ["whoami"]
            | ["cluster"],
        ) => respond::error(StatusCode::METHOD_NOT_ALLOWED, format!("{} is not allowed on {path}", req.method())),
        _ => respond::error(StatusCode::NOT_FOUND, format!("no such endpoint {path}")),
    }
}

/// SPEC §4's browser rules, before auth and routing: Origin everywhere, Host
/// except on `/metrics` and `/healthz`, `Content-Type` on `/v1` POSTs with a body.
fn browser_safety(state: &AdminState, req: &Request<Incoming>, segments: &[&str]) -> Result<(), guard::Refusal> {
    let headers = req.headers();
    // The hosts of the config in force, read only for a name that needs them.
    let listed = |name: &str| state.control.config().borrow().admin.hosts.iter().any(|h| h == name);
    guard::origin(headers, listed)?;
    if matches!(segments, ["metrics"] | ["healthz"]) {
        return Ok(());
    }
    guard::host(headers, listed)?;
    if req.method() == Method::POST && segments.first() == Some(&"v1") {
        guard::json_body(headers, !req.body().is_end_stream())?;
    }
    Ok(())
}

fn answer(r: Result<switchyard_control::ServiceView, switchyard_control::ControlError>) -> Resp {
    match r {
        Ok(v) => respond::service(&v),
        Err(e) => respond::refused(&e),
    }
}

async fn mutate(state: &AdminState, caller: &Caller, svc: &str, action: &str, req: Request<Incoming>) -> Resp {
    match mutation(state, caller, svc, action, req).await {
        Ok(resp) => resp,
        Err(message) => respond::error(StatusCode::BAD_REQUEST, message),
    }
}

/// A change request; `Err` is a 400 message.
async fn mutation(
    state: &AdminState,
    caller: &Caller,
    svc: &str,
    action: &str,
    req: Request<Incoming>,
) -> Result<Resp, String> {
    let c = &state.control;
    let if_match = if_match(&req)?;
    let meta = |reason: String, force: bool| ChangeMeta { actor: caller.name.clone(), reason, force, if_match };
    let settle = |wait, result| crate::cluster::settle(state.cluster.as_ref(), wait, result, StatusCode::OK);
    Ok(match action {
        "switch" => {
            let b: SwitchBody = body(req, None).await?;
            let wait = crate::cluster::wait_of(b.wait_replicas.as_deref())?;
            settle(wait, c.switch(svc, &b.pool, meta(b.reason, b.force)).await).await
        }
        "weights" => {
            let b: WeightsBody = body(req, None).await?;
            let wait = crate::cluster::wait_of(b.wait_replicas.as_deref())?;
            settle(wait, c.set_weights(svc, b.weights, meta(b.reason, b.force)).await).await
        }
        "rollback" => {
            let b = body(req, Some(RollbackBody::default())).await?;
            let wait = crate::cluster::wait_of(b.wait_replicas.as_deref())?;
            settle(wait, c.rollback(svc, meta(b.reason, b.force)).await).await
        }
        "rollout" => {
            let b: serde_json::Value = body(req, None).await?;
            crate::rollout::start(state, svc, b, meta(String::new(), false)).await?
        }
        "preview-token" => {
            let b: PreviewBody = body(req, None).await?;
            let ttl = match b.ttl.as_deref() {
                None => std::time::Duration::from_secs(3600),
                Some(t) => switchyard_config::parse_duration(t).map_err(|e| format!("ttl: {e}"))?,
            };
            match c.preview_token(svc, &b.pool, ttl).await {
                Ok(v) => respond::json(StatusCode::OK, &v),
                Err(e) => respond::refused(&e),
            }
        }
        other => respond::error(StatusCode::NOT_FOUND, format!("no such action \"{other}\"")),
    })
}

/// `If-Match: "7"` (quotes optional) → `Some(7)`.
pub(crate) fn if_match(req: &Request<Incoming>) -> Result<Option<u64>, String> {
    let Some(v) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse().map(Some).map_err(|_| format!("If-Match must be a service version like \"3\", got {v:?}"))
}

/// Reads and parses a JSON body; an empty body means `if_empty` when given.
pub(crate) async fn body<T: DeserializeOwned>(req: Request<Incoming>, if_empty: Option<T>) -> Result<T, String> {
    let bytes: Bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(format!("body unreadable or over {MAX_BODY} bytes")),
    };
    if let Some(v) = if_empty.filter(|_| bytes.iter().all(u8::is_ascii_whitespace)) {
        return Ok(v);
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON body: {e}"))
}
