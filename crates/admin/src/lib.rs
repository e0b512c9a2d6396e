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

/// Serves the admin API on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, shutdown: impl Future<Output = ()>) {
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
