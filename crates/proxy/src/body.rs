//! Body types that stream without boxing: the request body sent upstream (which can
//! be handed to a second backend when the first refused the connection, and which
//! reports its progress to the exchange's clocks) and the response body sent to the
//! client (which carries the in-flight count, cuts a backend that went quiet for
//! `timeouts.idle`, and, for HTTP/1 upstreams, drives the upstream connection and
//! gives it back at the end).

use crate::exchange::{IdleTimeout, Progress, Timer, after};
use crate::tracker::Tracker;
use crate::upstream::Lease;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use std::any::Any;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// The error type of both bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Boxed = Pin<Box<dyn Body<Data = Bytes, Error = BoxError> + Send>>;

/// A client's request body: hyper's own, or any other body (tests, embedders), boxed once.
pub(crate) enum Inbound {
    Incoming(Incoming),
    Other(Boxed),
}

/// A client's request body as it goes upstream: limited to `max_request_body`.
pub(crate) type ClientBody = crate::limits::Limited<Inbound>;

impl Inbound {
    /// Wraps `body`; hyper's `Incoming` is kept as it is (no box on the real path).
    pub(crate) fn new<B>(body: B) -> Inbound
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(incoming) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Incoming>>().and_then(Option::take) {
            return Inbound::Incoming(incoming);
        }
        match slot {
            Some(b) => Inbound::Other(Box::pin(b.map_err(Into::into))),
            // Unreachable: only an `Incoming` was taken out, and that returned above.
            None => Inbound::Other(Box::pin(http_body_util::Empty::new().map_err(|n: Infallible| match n {}))),
        }
    }
}

impl Body for Inbound {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Inbound::Incoming(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Inbound::Other(b) => b.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Inbound::Incoming(b) => b.is_end_stream(),
            Inbound::Other(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Inbound::Incoming(b) => b.size_hint(),
            Inbound::Other(b) => b.size_hint(),
        }
    }
}

enum Source {
    /// The client's body, streamed as it arrives.
    Direct(ClientBody),
    /// The client's body behind a slot that the first poll empties: a connect
    /// failure happens before any poll, so a retry finds the body still there.
    Shared {
        /// The body until someone polls it.
        slot: Arc<Mutex<Option<ClientBody>>>,
        /// The body once taken.
        taken: Option<ClientBody>,
        /// Hint of the body's size, known before it is taken.
        hint: SizeHint,
    },
    /// No body.
    Empty,
}

/// The body of a request on its way upstream.
pub struct RequestBody {
    source: Source,
    /// Told of every frame and of the end, for the exchange's clocks.
    progress: Option<Arc<Progress>>,
}

impl RequestBody {
    /// The client's body, sent once.
    pub(crate) fn direct(body: ClientBody) -> RequestBody {
        RequestBody { source: Source::Direct(body), progress: None }
    }

    /// No body.
    pub(crate) fn empty() -> RequestBody {
        RequestBody { source: Source::Empty, progress: None }
    }

    /// A body that can be sent twice as long as the first attempt never polled it.
    pub(crate) fn shared(body: ClientBody) -> (RequestBody, RequestBody) {
        let hint = body.size_hint();
        let slot = Arc::new(Mutex::new(Some(body)));
        let again = Source::Shared { slot: slot.clone(), taken: None, hint };
        let first = Source::Shared { slot, taken: None, hint };
        (RequestBody { source: first, progress: None }, RequestBody { source: again, progress: None })
    }

    /// Starts reporting progress for one attempt; `None` (and nothing allocated) when
    /// there is no body to send.
    pub(crate) fn track(&mut self) -> Option<Arc<Progress>> {
        if self.is_end_stream() {
            self.progress = None;
            return None;
        }
        let p = Arc::new(Progress::new());
        self.progress = Some(p.clone());
        Some(p)
    }

    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.source {
            Source::Direct(b) => Pin::new(b).poll_frame(cx),
            Source::Empty => Poll::Ready(None),
            Source::Shared { slot, taken, .. } => {
                if taken.is_none() {
                    *taken = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                }
                match taken {
                    Some(b) => Pin::new(b).poll_frame(cx),
                    // The other attempt took it; this one has nothing to send.
                    None => Poll::Ready(None),
                }
            }
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = this.poll_source(cx);
        if let Some(p) = &this.progress {
            match &frame {
                // hyper stops polling once the body says it has ended.
                Poll::Ready(Some(Ok(_))) if this.is_end_stream() => p.finished(),
                Poll::Ready(Some(Ok(_))) => p.moved(),
                Poll::Ready(None) => p.finished(),
                Poll::Ready(Some(Err(_))) | Poll::Pending => {}
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Direct(b) => b.is_end_stream(),
            Source::Empty => true,
            Source::Shared { taken: Some(b), .. } => b.is_end_stream(),
            Source::Shared { hint, .. } => hint.upper() == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Direct(b) => b.size_hint(),
            Source::Empty => SizeHint::with_exact(0),
            Source::Shared { taken: Some(b), .. } => b.size_hint(),
            Source::Shared { hint, .. } => *hint,
        }
    }
}

/// The body of a response on its way to the client.
pub enum ResponseBody {
    /// Streamed from the backend.
    Upstream(UpstreamBody),
    /// A short body the proxy wrote itself.
    Full(Option<Bytes>),
}

/// A backend's response body; the tracker records the request when it is dropped.
pub struct UpstreamBody {
    body: Incoming,
    pub(crate) tracker: Tracker,
    /// The HTTP/1 connection the body arrives on, driven here (`upstream`); `None`
    /// for hyper-util's client, which drives its connections on their own tasks.
    lease: Option<Lease>,
    ended: bool,
    /// `timeouts.idle`, and when it runs out (`None`: a frame came since the last wait).
    idle: Duration,
    quiet_until: Option<Instant>,
    /// The idle clock when there is no lease (whose own timer is used otherwise).
    timer: Timer,
}

impl ResponseBody {
    /// A body the proxy writes itself.
    pub fn text(text: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::Full(Some(text.into()))
    }

    pub(crate) fn upstream(body: Incoming, tracker: Tracker, lease: Option<Lease>, idle: Duration) -> ResponseBody {
        ResponseBody::Upstream(UpstreamBody {
            body,
            tracker,
            lease,
            ended: false,
            idle,
            quiet_until: None,
            timer: Timer::default(),
        })
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // Only a connection whose answer was read to its end can carry another request.
        if let Some(lease) = self.lease.take()
            && (self.ended || self.body.is_end_stream())
        {
            self.tracker.conns().put(lease);
        }
    }
}

impl UpstreamBody {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // Read what the connection has first, so the body finds it without a wake-up.
        if let Some(lease) = &mut self.lease {
            lease.drive(cx);
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.tracker.add_bytes(d.len());
                }
                self.quiet_until = None;
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Pending => {
                // The clock is read and armed only when the backend makes us wait.
                let at = *self.quiet_until.get_or_insert_with(|| after(Instant::now(), self.idle));
                let timer = match &mut self.lease {
                    Some(lease) => &mut lease.timer,
                    None => &mut self.timer,
                };
                match timer.poll_until(at, cx) {
                    Poll::Ready(()) => {
                        tracing::debug!(idle = ?self.idle, "response body cut: the backend went quiet");
                        // The lease is not given back (`ended` stays false): its connection closes.
                        Poll::Ready(Some(Err(Box::new(IdleTimeout(self.idle)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Upstream(u) => u.poll_frame(cx),
            ResponseBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(u) => u.body.is_end_stream(),
            ResponseBody::Full(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(u) => u.body.size_hint(),
            ResponseBody::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
        }
    }
}
