//! switchyard-admin owns the admin HTTP API (SPEC §4): JSON over HTTP on
//! `[admin].address`, a thin layer over `ControlHandle` with bearer-token auth,
//! closed to web pages of other sites (Origin, Host and Content-Type rules) and
//! bounded (header timeout, connection limit); and the dashboard (SPEC §10),
//! a page and its assets embedded in the binary, served under `/ui`.
//! Every change goes through the control task; this crate holds no traffic state.
//!
//! It depends on config, proxy and control; never on the binary.

mod api;
mod auth;
mod cluster;
mod guard;
mod listen;
mod observe;
mod query;
mod respond;
mod rollout;
mod stats;
mod ui;

pub use api::AdminState;
pub use auth::{AuthError, Caller, Tokens};
pub use listen::Limits;

use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves the admin API on `listener` until `shutdown` resolves, with the
/// SPEC's limits (256 connections, 10 s header timeout). After every
/// successful reload the token files are read again (`env_token` stands in for
/// `token_file` as at start); if they fail to load, the old tokens stay.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    env_token: Option<String>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, state, env_token, Limits::default(), shutdown).await;
}

/// [`serve`] with other limits (tests use small ones).
pub async fn serve_with(
    listener: TcpListener,
    state: Arc<AdminState>,
    env_token: Option<String>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut configs = state.control.config();
    let watcher = state.clone();
    tokio::spawn(async move {
        while configs.changed().await.is_ok() {
            let config = configs.borrow_and_update().clone();
            match Tokens::load(&config.admin, env_token.clone()) {
                Ok(t) => watcher.tokens.store(Arc::new(t)),
                Err(e) => tracing::error!("admin tokens not reloaded, old ones kept: {e}"),
            }
        }
    });
    listen::run(listener, state, limits, shutdown).await;
}
