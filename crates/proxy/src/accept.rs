//! Bounded accepting, shared by the proxy's listeners and the admin API: a place
//! under the connection limit is taken *before* `accept`, so at the limit nothing
//! is accepted until a connection closes (the kernel's backlog holds new clients);
//! an accept error (EMFILE and friends) keeps the place, backs off, and is logged
//! once per burst instead of spinning.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Pause after a failed accept before the next try.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts from one listener under a shared limit.
pub struct Acceptor {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    /// A place kept across a failed accept.
    held: Option<OwnedSemaphorePermit>,
    failing: bool,
    /// Names the listener in logs.
    what: &'static str,
}

impl Acceptor {
    /// Accepts from `listener`, each connection holding one of `slots` until it
    /// drops its permit.
    pub fn new(listener: TcpListener, slots: Arc<Semaphore>, what: &'static str) -> Acceptor {
        Acceptor { listener, slots, held: None, failing: false, what }
    }

    /// The next connection and its place; `None` once `shutdown` resolved.
    pub async fn next(
        &mut self,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
        loop {
            let permit = match self.held.take() {
                Some(p) => p,
                None => tokio::select! {
                    p = self.slots.clone().acquire_owned() => p.ok()?,
                    () = shutdown.as_mut() => return None,
                },
            };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = shutdown.as_mut() => return None,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if self.failing {
                        tracing::info!(listener = self.what, "accepting connections again");
                        self.failing = false;
                    }
                    return Some((stream, peer, permit));
                }
                Err(e) => {
                    if !self.failing {
                        tracing::warn!(listener = self.what, error = %e, "accept failed; retrying every 50 ms until it works");
                        self.failing = true;
                    }
                    self.held = Some(permit);
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        () = shutdown.as_mut() => return None,
                    }
                }
            }
        }
    }
}
