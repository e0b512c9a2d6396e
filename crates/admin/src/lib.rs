//! switchyard-admin owns the admin HTTP API (SPEC §4): JSON over HTTP on
//! `[admin].address`, a thin layer over `ControlHandle` with bearer-token auth.
//! Every change goes through the control task; this crate holds no traffic state.
//!
//! It depends on config, proxy and control; never on the binary.

mod api;
mod auth;
mod observe;
mod respond;

pub use api::AdminState;
pub use auth::{AuthError, Caller, Tokens};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves the admin API on `listener` until `shutdown` resolves. After every
/// successful reload the token files are read again (`env_token` stands in for
/// `token_file` as at start); if they fail to load, the old tokens stay.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    env_token: Option<String>,
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
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(api::handle(&state, req).await) }
                    });
                    if let Err(e) = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await {
                        tracing::debug!(error = %e, %peer, "admin connection error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
}
