//! HTTP/1 upstream connections driven inside the client connection's own task.
//!
//! Each backend keeps a stack of idle keep-alive connections per thread (worker). A request checks one
//! out (or connects), and its future polls the connection itself until the response
//! head arrives; the response body then polls it while the client reads. When the
//! body has been read to its end the connection goes back on the stack. So a
//! request never crosses to another task and back — what hyper-util's pooled
//! client does, with a wake-up and a queue hand-off each way (see `ARCHITECTURE.md`).
//! h2c pools and upgrades still use that client (`client.rs`).

use crate::body::RequestBody;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// At most this many idle connections are kept per backend; more are closed.
const MAX_IDLE: usize = 1024;
/// The reaper closes idle connections at least this often.
const MAX_REAP_INTERVAL: Duration = Duration::from_secs(15);

/// One upstream connection: the request sender and the connection state machine it feeds.
pub(crate) struct Lease {
    send: http1::SendRequest<RequestBody>,
    /// `None` once the connection has ended (never polled again after that). Boxed
    /// once per connection, so a request moves a pointer, not the whole state.
    conn: Option<Box<http1::Connection<TokioIo<TcpStream>, RequestBody>>>,
}

impl Lease {
    /// Lets the connection write and read what it can; false once it has ended.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(conn) = &mut self.conn else { return false };
        match Pin::new(&mut **conn).poll(cx) {
            Poll::Pending => true,
            Poll::Ready(r) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                self.conn = None;
                false
            }
        }
    }

    /// Ready for another request (after being driven once since the last one ended).
    fn reusable(&mut self, cx: &mut Context<'_>) -> bool {
        self.drive(cx) && self.send.is_ready()
    }
}

/// Why a request got no response head.
#[expect(clippy::large_enum_variant, reason = "returned by value once per failed attempt; boxing would allocate")]
pub(crate) enum SendError {
    /// No connection could be made; the request never left and comes back.
    Connect(std::io::Error, Request<RequestBody>),
    /// The connection failed or closed before the head arrived.
    Http(hyper::Error),
}

/// Idle stacks per backend; a thread uses its own (`shard`), so a worker reuses the
/// connections registered with its own runtime and workers never contend.
const SHARDS: usize = 8;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

fn shard() -> usize {
    SHARD.with(|s| *s)
}

type Stack = Mutex<Vec<(Lease, Instant)>>;

/// A backend's idle connections, newest last in each thread's stack.
pub(crate) struct IdleConns {
    stacks: [Stack; SHARDS],
    idle_timeout: Duration,
    reaper: AtomicBool,
}

fn lock(stack: &Stack) -> MutexGuard<'_, Vec<(Lease, Instant)>> {
    stack.lock().unwrap_or_else(PoisonError::into_inner)
}

impl IdleConns {
    /// Empty stacks whose connections close after `idle_timeout` unused.
    pub(crate) fn new(idle_timeout: Duration) -> IdleConns {
        IdleConns { stacks: Default::default(), idle_timeout, reaper: AtomicBool::new(false) }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Lease, Instant)>> {
        lock(&self.stacks[shard()])
    }

    fn take(&self) -> Option<(Lease, Instant)> {
        self.lock().pop()
    }

    /// Gives back a connection whose response was read to its end.
    pub(crate) fn put(self: &Arc<Self>, lease: Lease) {
        if lease.conn.is_none() || lease.send.is_closed() {
            return;
        }
        {
            let mut idle = self.lock();
            if idle.len() >= MAX_IDLE {
                drop(idle);
                return; // closes it, outside the lock
            }
            idle.push((lease, Instant::now()));
        }
        if !self.reaper.swap(true, Ordering::Relaxed) {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn(reap(Arc::downgrade(self)))),
                // No runtime to sweep from: let the next put try again.
                Err(_) => self.reaper.store(false, Ordering::Relaxed),
            }
        }
    }

    /// Closes connections idle too long or closed by the backend; false when none are
    /// left (and this reaper should end).
    fn reap(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut left = false;
        for stack in &self.stacks {
            let mut idle = lock(stack);
            idle.retain_mut(|(lease, since)| since.elapsed() < self.idle_timeout && lease.drive(&mut cx));
            left |= !idle.is_empty();
        }
        if left {
            return true;
        }
        self.reaper.store(false, Ordering::Relaxed);
        // A put that raced with the sweep saw the flag still set and started no reaper.
        let raced = self.stacks.iter().any(|s| !lock(s).is_empty());
        raced && !self.reaper.swap(true, Ordering::Relaxed)
    }
}

/// Sweeps a backend's idle connections until it has none (or is gone).
async fn reap(conns: Weak<IdleConns>) {
    loop {
        let Some(interval) = conns.upgrade().map(|c| c.idle_timeout.min(MAX_REAP_INTERVAL)) else { return };
        tokio::time::sleep(interval).await;
        match conns.upgrade() {
            Some(c) if c.reap() => {}
            _ => return,
        }
    }
}

/// Sends `req` (origin-form URI, `Host` set) to `addr` on an idle connection or a new
/// one, driving it in this task until the response head arrives. A request that an
/// idle connection could not take (it had just closed) moves to the next one.
pub(crate) async fn send(
    conns: &IdleConns,
    addr: &str,
    connect_timeout: Duration,
    mut req: Request<RequestBody>,
) -> Result<(Response<Incoming>, Lease), SendError> {
    loop {
        let (mut lease, reused) = match checkout(conns).await {
            Some(lease) => (lease, true),
            None => match connect(addr, connect_timeout).await {
                Ok(lease) => (lease, false),
                Err(Connect::Refused(e)) => return Err(SendError::Connect(e, req)),
                Err(Connect::Handshake(e)) => return Err(SendError::Http(e)),
            },
        };
        let mut response = pin!(lease.send.try_send_request(req));
        let result = poll_fn(|cx| {
            lease.drive(cx);
            response.as_mut().poll(cx)
        })
        .await;
        match result {
            Ok(resp) => return Ok((resp, lease)),
            Err(mut e) => match e.take_message() {
                Some(back) if reused => req = back,
                _ => return Err(SendError::Http(e.into_error())),
            },
        }
    }
}

/// The newest idle connection that is still open and ready.
async fn checkout(conns: &IdleConns) -> Option<Lease> {
    loop {
        let (mut lease, since) = conns.take()?;
        let usable = since.elapsed() < conns.idle_timeout && poll_fn(|cx| Poll::Ready(lease.reusable(cx))).await;
        if usable {
            return Some(lease);
        }
    }
}

enum Connect {
    Refused(std::io::Error),
    Handshake(hyper::Error),
}

async fn connect(addr: &str, timeout: Duration) -> Result<Lease, Connect> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Connect::Refused(e)),
        Err(_) => return Err(Connect::Refused(std::io::ErrorKind::TimedOut.into())),
    };
    // Small requests and answers go out at once.
    let _ = stream.set_nodelay(true);
    let (send, conn) = http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(Connect::Handshake)?;
    Ok(Lease { send, conn: Some(Box::new(conn)) })
}
