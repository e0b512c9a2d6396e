//! A client connection's life: served until it ends, until the listener shuts
//! down (graceful: in-flight requests finish), or until one of its client timers
//! runs out. One `Sleep` per connection, in the connection's own task:
//!
//! - a fresh connection must complete its first request head within
//!   `header_timeout` of opening (HTTP/2: send its connection preface), else it is
//!   closed;
//! - an HTTP/1 request head whose first byte arrived on an idle keep-alive
//!   connection must be complete within `header_timeout` of that byte;
//! - a connection with no request in flight for `idle_timeout` is closed (HTTP/2
//!   first gets a GOAWAY and `header_timeout` to go);
//! - while a request is in flight no client timer runs (the upstream timeouts do).
//!
//! The timer is re-armed lazily: when it fires it recomputes the deadline from
//! the connection's `Activity` and sleeps again if that moved later. What can
//! make the deadline earlier (a request ending, a head or the HTTP/2 preface
//! starting to arrive) leaves a mark that is checked after each poll of the
//! connection, and the timer is reset then if needed.

use crate::activity::{Activity, Deadline};
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The client-side timeouts of a listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientTimeouts {
    /// `header_timeout`.
    pub(crate) header: Duration,
    /// `idle_timeout`.
    pub(crate) idle: Duration,
}

/// Drives `conn` to its end; `graceful` starts its graceful shutdown (HTTP/1: close
/// once idle; HTTP/2: GOAWAY, then finish open streams).
pub(crate) async fn drive<C, E>(
    conn: C,
    graceful: impl Fn(Pin<&mut C>),
    activity: &Activity,
    timeouts: ClientTimeouts,
    mut stop: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(conn);
    let first = match activity.deadline(timeouts.header, timeouts.idle) {
        Deadline::Head(d) | Deadline::Idle(d) => d,
        Deadline::Busy => Instant::now() + timeouts.idle,
    };
    let sleep = tokio::time::sleep_until(first);
    tokio::pin!(sleep);
    let mut closing = false;
    let mut stopping = false;
    loop {
        tokio::select! {
            biased;
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, %peer, "client connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                closing = true;
                graceful(conn.as_mut());
            }
            // Polled after the connection: what happened there may have moved the deadline earlier.
            () = poll_fn(|_| if activity.take_moved() { Poll::Ready(()) } else { Poll::Pending }) => {
                match activity.deadline(timeouts.header, timeouts.idle) {
                    Deadline::Head(d) | Deadline::Idle(d) if d < sleep.deadline() => sleep.as_mut().reset(d),
                    _ => {}
                }
            }
            () = sleep.as_mut() => {
                let now = Instant::now();
                let next = match activity.deadline(timeouts.header, timeouts.idle) {
                    // Look again later; the request's end does not wake this task.
                    Deadline::Busy => now + timeouts.idle,
                    Deadline::Head(d) | Deadline::Idle(d) if d > now => d,
                    Deadline::Head(_) => {
                        tracing::debug!(%peer, "closing client connection: request head not received within header_timeout");
                        return;
                    }
                    Deadline::Idle(_) if closing => return,
                    Deadline::Idle(_) => {
                        tracing::debug!(%peer, "closing client connection: idle_timeout");
                        closing = true;
                        graceful(conn.as_mut());
                        now + timeouts.header
                    }
                };
                sleep.as_mut().reset(next);
            }
        }
    }
}

#[cfg(test)]
#[path = "lifetime_tests.rs"]
mod tests;
