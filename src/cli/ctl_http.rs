//! How `ctl` talks to the admin API: one JSON call, and `Admin`, which turns a
//! refusal into exit 1 (the server's error printed) and an unreachable API into 3.

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::process::ExitCode;

/// The admin API as `ctl` talks to it.
pub struct Admin {
    pub base: String,
    pub token: Option<String>,
    /// `--json`: refusals print the server's JSON too.
    pub json: bool,
    /// What every change carries.
    pub change: ChangeOpts,
}

/// `--if-match` and `--wait-replicas`: sent with every POST.
#[derive(Clone, Default)]
pub struct ChangeOpts {
    pub if_match: Option<u64>,
    pub wait_replicas: Option<String>,
}

/// An answer a command goes on with, or the exit code it ends with (the
/// refusal or the unreachable API already reported on stderr).
pub enum Answer {
    Ok(Value),
    Done(ExitCode),
}

impl Admin {
    /// One call: status and JSON body, or why the API could not be reached.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(http::StatusCode, Value), String> {
        call(&self.base, &self.token, &self.change, method, path, body).await
    }

    /// A call whose refusal ends the command with 1 and whose failure ends it with 3.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        match self.call(method, path, body).await {
            Ok((status, value)) if status == http::StatusCode::ACCEPTED => Answer::Done(incomplete(&value)),
            Ok((status, value)) if status.is_success() => Answer::Ok(value),
            Ok((status, value)) => Answer::Done(self.refused(status, &value)),
            Err(e) => Answer::Done(self.unreachable(&e)),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    /// A GET whose failure is no error (optional figures); `None` when it fails.
    pub async fn try_get(&self, path: &str) -> Option<Value> {
        match self.call(Method::GET, path, None).await {
            Ok((status, value)) if status.is_success() => Some(value),
            _ => None,
        }
    }

    /// Prints the server's error; exit 1.
    pub fn refused(&self, status: http::StatusCode, value: &Value) -> ExitCode {
        if self.json {
            println!("{value}");
        }
        eprintln!("error ({}): {}", status.as_u16(), value["error"].as_str().unwrap_or("(no message)"));
        for p in value["problems"].as_array().into_iter().flatten() {
            eprintln!("  {}", p.as_str().unwrap_or_default());
        }
        ExitCode::from(super::INVALID)
    }

    /// Says the API cannot be reached; exit 3.
    pub fn unreachable(&self, e: &str) -> ExitCode {
        eprintln!("cannot reach the admin API at {}: {e}", self.base);
        ExitCode::from(super::IO_FAILURE)
    }
}

/// 202 to a change with `--wait-replicas`: committed, but not every replica
/// applied it in time (or one rejected it). Says which; exit 1.
pub fn incomplete(value: &Value) -> ExitCode {
    let names = |k: &str| {
        let v: Vec<&str> = value[k].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if v.is_empty() { "none".to_owned() } else { v.join(", ") }
    };
    eprintln!(
        "committed as version {}, but not applied everywhere: pending: {}; rejected: {}",
        value["version"],
        names("pending"),
        names("rejected")
    );
    ExitCode::from(super::INVALID)
}

/// One request to `base` + `path`; the answer's status and JSON (a body that is
/// not JSON becomes `{"error": TEXT}`). A POST carries `change`.
pub async fn call(
    base: &str,
    token: &Option<String>,
    change: &ChangeOpts,
    method: Method,
    path: &str,
    mut body: Option<Value>,
) -> Result<(http::StatusCode, Value), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let post = method == Method::POST;
    let mut req = Request::builder().method(method).uri(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let (true, Some(v)) = (post, change.if_match) {
        req = req.header("if-match", format!("\"{v}\""));
    }
    if let (true, Some(w)) = (post, &change.wait_replicas) {
        let obj = body.get_or_insert_with(|| json!({}));
        if let Some(map) = obj.as_object_mut() {
            map.insert("wait_replicas".into(), json!(w));
        }
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let req = req
        .header("content-type", "application/json")
        .body(Full::new(body))
        .map_err(|e| format!("bad admin URL: {e}"))?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| "timed out after 30s".to_owned())?
        .map_err(|e| format!("{e}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({"error": String::from_utf8_lossy(&bytes)}));
    Ok((status, value))
}
