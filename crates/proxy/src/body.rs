//! Body types that stream without boxing: the request body sent upstream (which can
//! be handed to a second backend when the first refused the connection) and the
//! response body sent to the client (which carries the in-flight count and, for
//! HTTP/1 upstreams, drives the upstream connection and gives it back at the end).

use crate::limits::{BoxError, ClientBody};
use crate::tracker::Tracker;
use crate::upstream::Lease;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// The body of a request on its way upstream.
pub enum RequestBody {
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

impl RequestBody {
    /// A body that can be sent twice as long as the first attempt never polled it.
    pub(crate) fn shared(body: ClientBody) -> (RequestBody, RequestBody) {
        let hint = body.size_hint();
        let slot = Arc::new(Mutex::new(Some(body)));
        let again = RequestBody::Shared { slot: slot.clone(), taken: None, hint };
        (RequestBody::Shared { slot, taken: None, hint }, again)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Direct(b) => Pin::new(b).poll_frame(cx),
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Shared { slot, taken, .. } => {
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

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Direct(b) => b.is_end_stream(),
            RequestBody::Empty => true,
            RequestBody::Shared { taken: Some(b), .. } => b.is_end_stream(),
            RequestBody::Shared { hint, .. } => hint.upper() == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Direct(b) => b.size_hint(),
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Shared { taken: Some(b), .. } => b.size_hint(),
            RequestBody::Shared { hint, .. } => *hint,
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
}

impl ResponseBody {
    /// A body the proxy writes itself.
    pub fn text(text: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::Full(Some(text.into()))
    }

    pub(crate) fn upstream(body: Incoming, tracker: Tracker, lease: Option<Lease>) -> ResponseBody {
        ResponseBody::Upstream(UpstreamBody { body, tracker, lease, ended: false })
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

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Upstream(u) => {
                // Read what the connection has first, so the body finds it without a wake-up.
                if let Some(lease) = &mut u.lease {
                    lease.drive(cx);
                }
                let frame = Pin::new(&mut u.body).poll_frame(cx);
                match &frame {
                    Poll::Ready(Some(Ok(f))) => {
                        if let Some(d) = f.data_ref() {
                            u.tracker.add_bytes(d.len());
                        }
                    }
                    Poll::Ready(None) => u.ended = true,
                    Poll::Ready(Some(Err(_))) | Poll::Pending => {}
                }
                frame
            }
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
