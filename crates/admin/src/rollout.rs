//! The rollout calls of the admin API (SPEC §4, §9): start with the service's
//! `[service.rollout]` overridden by the body, read the rollout object, and
//! pause/resume/abort/promote it.

use crate::AdminState;
use crate::api::{body, if_match};
use crate::auth::Caller;
use crate::respond::{self, Resp};
use http::Request;
use http::StatusCode;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::Value;
use switchyard_control::{ChangeMeta, ControlHandle, RolloutAction};

/// `POST /v1/services/{svc}/rollout`: `Err` is a 400 message.
pub(crate) async fn start(state: &AdminState, svc: &str, body: Value, meta: ChangeMeta) -> Result<Resp, String> {
    let c = &state.control;
    let Value::Object(mut fields) = body else {
        return Err("the body must be a JSON object".into());
    };
    let pool = match fields.remove("pool") {
        Some(Value::String(p)) => p,
        Some(_) => return Err("`pool` must be a string".into()),
        None => return Err("missing field `pool`".into()),
    };
    let reason = match fields.remove("reason") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(r)) => r,
        Some(_) => return Err("`reason` must be a string".into()),
    };
    let wait = match fields.remove("wait_replicas") {
        None | Some(Value::Null) => None,
        Some(Value::String(w)) => crate::cluster::wait_of(Some(&w))?,
        Some(_) => return Err("`wait_replicas` must be a string like \"5s\"".into()),
    };
    let config = c.config().borrow().clone();
    let Some(service) = config.service(svc) else {
        return Ok(respond::refused(&switchyard_control::ControlError::UnknownService(svc.into())));
    };
    let settings = switchyard_config::rollout_overrides(&service.rollout, &fields)?;
    let meta = ChangeMeta { reason, ..meta };
    let result = c.rollout_start(svc, &pool, settings, meta).await;
    Ok(crate::cluster::settle(state.cluster.as_ref(), wait, result, StatusCode::CREATED).await)
}

/// The optional body of a control call.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ControlBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    wait_replicas: Option<String>,
}

/// `POST /v1/services/{svc}/rollout/{action}` (body optional); `Err` is a 400 message.
pub(crate) async fn control(
    state: &AdminState,
    caller: &Caller,
    svc: &str,
    action: &str,
    req: Request<Incoming>,
) -> Result<Resp, String> {
    let Some(action) = RolloutAction::parse(action) else {
        return Ok(respond::error(
            StatusCode::NOT_FOUND,
            format!("no rollout action \"{action}\" (pause, resume, abort, promote)"),
        ));
    };
    let c = &state.control;
    let if_match = if_match(&req)?;
    let b = body(req, Some(ControlBody::default())).await?;
    let wait = crate::cluster::wait_of(b.wait_replicas.as_deref())?;
    let meta = ChangeMeta {
        actor: caller.name.clone(),
        reason: b.reason.unwrap_or_default(),
        if_match,
        ..ChangeMeta::default()
    };
    let result = c.rollout_control(svc, action, meta).await;
    Ok(crate::cluster::settle(state.cluster.as_ref(), wait, result, StatusCode::OK).await)
}

/// `GET /v1/services/{svc}/rollout`.
pub(crate) async fn get(c: &ControlHandle, svc: &str) -> Resp {
    match c.rollout(svc).await {
        Ok(r) => respond::json(StatusCode::OK, &r),
        Err(e) => respond::refused(&e),
    }
}
