//! `max_request_body`: a body whose declared length is over the limit is refused
//! (413) before anything goes upstream (`request_check`); a body of unknown length
//! (chunked, or HTTP/2 without `content-length`) is counted as it streams and fails
//! with `BodyTooLarge` the moment it passes the limit. That error aborts the
//! upstream exchange; the proxy answers 413 if the backend had not answered yet,
//! else the client's response is cut.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::body::BoxError;

/// The request body grew past `max_request_body`.
#[derive(Debug)]
pub struct BodyTooLarge;

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body larger than max_request_body")
    }
}

impl std::error::Error for BodyTooLarge {}

/// A body that fails once more than its limit of data went through.
pub struct Limited<B> {
    inner: B,
    /// Bytes still allowed (`u64::MAX` without a limit).
    left: u64,
    failed: bool,
}

impl<B: Body> Limited<B> {
    /// `body` limited to `limit` bytes; 0 = unlimited.
    pub fn new(body: B, limit: u64) -> Limited<B> {
        Limited { inner: body, left: if limit == 0 { u64::MAX } else { limit }, failed: false }
    }
}

/// Whether an exchange's error (hyper's, with the body's error as a cause) came
/// from a body that grew past its limit.
pub(crate) fn is_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<BodyTooLarge>() {
            return true;
        }
        cause = c.source();
    }
    false
}

impl<B> Body for Limited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            match this.left.checked_sub(data.len() as u64) {
                Some(left) => this.left = left,
                None => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        !self.failed && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};
    use std::convert::Infallible;

    type Chunks = StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

    fn chunks(n: usize, size: usize) -> Chunks {
        let frames: Vec<_> = (0..n).map(|_| Ok(Frame::data(Bytes::from(vec![b'x'; size])))).collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn passes_up_to_the_limit_and_fails_past_it() {
        let body = Limited::new(chunks(4, 10), 40);
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 40);

        let mut body = Limited::new(chunks(5, 10), 40);
        let mut seen = 0;
        let err = loop {
            match body.frame().await {
                Some(Ok(f)) => seen += f.into_data().map_or(0, |d| d.len()),
                Some(Err(e)) => break e,
                None => panic!("ended without an error"),
            }
        };
        assert_eq!(seen, 40);
        assert!(err.is::<BodyTooLarge>());
        assert!(is_too_large(err.as_ref()));
        assert!(body.frame().await.is_some_and(|r| r.is_err()), "stays failed");
    }

    #[tokio::test]
    async fn zero_is_unlimited() {
        let body = Limited::new(chunks(100, 1000), 0);
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 100_000);
    }
}
