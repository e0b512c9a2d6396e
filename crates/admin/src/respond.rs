//! JSON answers and the mapping from refusals to HTTP status codes.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use switchyard_control::{ControlError, ServiceView};

/// The admin API's response type.
pub type Resp = Response<Full<Bytes>>;

/// A JSON answer with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{\"error\":\"serialization failed\"}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A service, with its version as `ETag`.
pub fn service(view: &ServiceView) -> Resp {
    let mut r = json(StatusCode::OK, view);
    if let Ok(tag) = HeaderValue::try_from(format!("\"{}\"", view.version)) {
        r.headers_mut().insert(header::ETAG, tag);
    }
    r
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Resp {
    json(status, &serde_json::json!({ "error": message.into() }))
}

/// A refusal from the control task.
pub fn refused(e: &ControlError) -> Resp {
    let status = match e {
        ControlError::UnknownService(_) | ControlError::UnknownPool { .. } | ControlError::NoRollout(_) => {
            StatusCode::NOT_FOUND
        }
        ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ControlError::Gate { .. } | ControlError::NothingToRollBack(_) | ControlError::Conflict(_) => {
            StatusCode::CONFLICT
        }
        ControlError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
        ControlError::InvalidConfig(problems) => {
            return json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &serde_json::json!({ "error": "config invalid; old config kept", "problems": problems }),
            );
        }
        ControlError::Persist(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ControlError::Unavailable | ControlError::StoreDown(_) => StatusCode::SERVICE_UNAVAILABLE,
        ControlError::Raced => StatusCode::CONFLICT,
    };
    error(status, e.to_string())
}

/// Plain text (for `/healthz`).
pub fn text(status: StatusCode, body: &'static str) -> Resp {
    with_text(status, Bytes::from_static(body.as_bytes()))
}

/// Plain text made at run time.
pub fn owned_text(status: StatusCode, body: String) -> Resp {
    with_text(status, Bytes::from(body))
}

fn with_text(status: StatusCode, body: Bytes) -> Resp {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}
