//! What a client connection is doing, for its timers (`lifetime`): requests in
//! flight, when it last went idle, when the next HTTP/1 request head began to
//! arrive. Kept in atomics next to the connection's `Proxy` (one allocation per
//! connection), updated by the request's service call, by its response body's
//! drop, and by a thin wrapper around the connection's IO that notices the first
//! byte read while idle. No task and no allocation per request; a request costs a
//! few relaxed atomic operations and one clock read when it ends.

use crate::body::ResponseBody;
use crate::forward::Proxy;
use crate::write_through::write_through;
use bytes::Bytes;
use http::Version;
use http_body::{Body, Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// "Not set" for the microsecond marks below.
const UNSET: u64 = u64::MAX;

/// The client preface every HTTP/2 connection starts with (RFC 9113 §3.4).
pub(crate) const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One client connection's request handler and activity, shared by its requests
/// and by its socket (which an upgrade hands to the tunnel).
pub(crate) struct Conn {
    pub(crate) proxy: Proxy,
    pub(crate) activity: Activity,
    /// Its place under `max_connections`, freed when the last holder is gone.
    pub(crate) _slot: Option<Slot>,
}

/// An accepted connection's place under `max_connections`, and its gauge count.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    gauge: metrics::Gauge,
}

impl Slot {
    pub(crate) fn new(permit: OwnedSemaphorePermit, gauge: &metrics::Gauge) -> Slot {
        gauge.increment(1.0);
        Slot { _permit: permit, gauge: gauge.clone() }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

/// The connection's activity; see the module docs.
pub(crate) struct Activity {
    opened: Instant,
    inflight: AtomicU32,
    /// µs after `opened` when the last request finished; `UNSET` until a first
    /// request or the HTTP/2 preface arrived (the connection is still "fresh").
    idle_since: AtomicU64,
    /// µs after `opened` when the first byte of the next HTTP/1 head arrived.
    head_since: AtomicU64,
    /// Set while an HTTP/1 connection is idle between requests: the next read is
    /// the start of a request head.
    watch_reads: AtomicBool,
    /// Set when the deadline may have moved earlier (a request ended, a head or the
    /// HTTP/2 preface began to arrive), for the timer to look again.
    moved: AtomicBool,
    h2: AtomicBool,
}

/// What the connection's timer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// A request is in flight; no client timer runs.
    Busy,
    /// A request head must be complete by then (first request, or an HTTP/1 head
    /// whose first byte arrived), else the connection is closed.
    Head(Instant),
    /// Idle between requests: closed at that instant unless a request comes.
    Idle(Instant),
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            inflight: AtomicU32::new(0),
            idle_since: AtomicU64::new(UNSET),
            head_since: AtomicU64::new(UNSET),
            watch_reads: AtomicBool::new(false),
            moved: AtomicBool::new(false),
            h2: AtomicBool::new(false),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_micros()).unwrap_or(UNSET - 1)
    }

    fn at(&self, us: u64, plus: Duration) -> Instant {
        self.opened + Duration::from_micros(us) + plus
    }

    /// The current deadline for `header` (head) and `idle` timeouts.
    pub(crate) fn deadline(&self, header: Duration, idle: Duration) -> Deadline {
        if self.inflight.load(Relaxed) > 0 {
            return Deadline::Busy;
        }
        match (self.head_since.load(Relaxed), self.idle_since.load(Relaxed)) {
            (head, _) if head != UNSET => Deadline::Head(self.at(head, header)),
            (_, UNSET) => Deadline::Head(self.at(0, header)),
            (_, since) => Deadline::Idle(self.at(since, idle)),
        }
    }

    /// Whether the deadline may have moved since the last call (clears the mark).
    pub(crate) fn take_moved(&self) -> bool {
        self.moved.load(Relaxed) && self.moved.swap(false, Relaxed)
    }

    fn begin(&self, version: Version) {
        self.inflight.fetch_add(1, Relaxed);
        if self.watch_reads.load(Relaxed) {
            self.watch_reads.store(false, Relaxed);
        }
        if self.head_since.load(Relaxed) != UNSET {
            self.head_since.store(UNSET, Relaxed);
        }
        if version == Version::HTTP_2 && !self.h2.load(Relaxed) {
            self.h2.store(true, Relaxed);
        }
    }

    fn end(&self) {
        if self.inflight.fetch_sub(1, Relaxed) == 1 {
            self.idle_since.store(self.now_us(), Relaxed);
            self.moved.store(true, Relaxed);
            // HTTP/2 reads while idle are pings and settings, not a request head.
            if !self.h2.load(Relaxed) {
                self.watch_reads.store(true, Relaxed);
            }
        }
    }

    fn on_read(&self) {
        if self.watch_reads.load(Relaxed) {
            self.watch_reads.store(false, Relaxed);
            self.head_since.store(self.now_us(), Relaxed);
            self.moved.store(true, Relaxed);
        }
    }

    /// The HTTP/1 path hands the connection to hyper with the start of a request head
    /// already read: that head is timed from now.
    pub(crate) fn handed_over(&self) {
        self.idle_since.store(self.now_us(), Relaxed);
        self.head_since.store(self.now_us(), Relaxed);
        self.moved.store(true, Relaxed);
    }

    /// The HTTP/2 preface arrived: from now on the connection is idle-timed
    /// between requests (as nginx does), not held to `header_timeout`.
    fn h2_preface(&self) {
        self.h2.store(true, Relaxed);
        self.idle_since.store(self.now_us(), Relaxed);
        self.moved.store(true, Relaxed);
    }
}

/// A request in flight on its connection, from the service call until its
/// response body is dropped (fully sent, or abandoned).
pub(crate) struct InFlight(Arc<Conn>);

impl InFlight {
    pub(crate) fn begin(conn: Arc<Conn>, version: Version) -> InFlight {
        conn.activity.begin(version);
        InFlight(conn)
    }

    pub(crate) fn proxy(&self) -> &Proxy {
        &self.0.proxy
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.activity.end();
    }
}

/// A response body that keeps its request counted as in flight.
pub(crate) struct Counted {
    body: ResponseBody,
    _request: InFlight,
}

impl Counted {
    pub(crate) fn new(body: ResponseBody, request: InFlight) -> Counted {
        Counted { body, _request: request }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The client connection's IO, noticing reads for the timers.
pub(crate) struct Watched<I> {
    io: I,
    conn: Arc<Conn>,
    /// Bytes of the HTTP/2 preface matched so far; `DECIDED` once it matched or not.
    preface: usize,
}

const DECIDED: usize = usize::MAX;

impl<I> Watched<I> {
    pub(crate) fn new(io: I, conn: Arc<Conn>) -> Watched<I> {
        Watched { io, conn, preface: 0 }
    }

    fn sniff(&mut self, read: &[u8]) {
        let want = &H2_PREFACE[self.preface..];
        let n = want.len().min(read.len());
        if read[..n] != want[..n] {
            self.preface = DECIDED;
        } else if self.preface + n == H2_PREFACE.len() {
            self.preface = DECIDED;
            self.conn.activity.h2_preface();
        } else {
            self.preface += n;
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if this.preface != DECIDED {
                this.sniff(&buf.filled()[before..]);
            }
            this.conn.activity.on_read();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    write_through!(io);
}
