//! The socket of an HTTP/1 upstream connection, noting whether the backend has sent
//! anything: a reused keep-alive connection that the backend closed before any
//! answer byte may have its request sent again (SPEC §3); one closed mid-answer may not.

use crate::write_through::write_through;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that raises `Heard` when bytes arrive.
pub(crate) struct Wire {
    stream: TcpStream,
    heard: Heard,
}

/// Whether the backend sent bytes since the last `reset` (shared with the connection's owner).
#[derive(Clone, Default)]
pub(crate) struct Heard(Arc<AtomicBool>);

impl Heard {
    /// Forgets earlier bytes (before a request whose answer must be told apart).
    pub(crate) fn reset(&self) {
        self.0.store(false, Relaxed);
    }

    /// Whether anything arrived since the last reset.
    pub(crate) fn any(&self) -> bool {
        self.0.load(Relaxed)
    }
}

impl Wire {
    /// Wraps `stream`; the returned flag follows it.
    pub(crate) fn new(stream: TcpStream) -> (Wire, Heard) {
        let heard = Heard::default();
        (Wire { stream, heard: heard.clone() }, heard)
    }
}

impl AsyncRead for Wire {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before && !this.heard.any() {
            this.heard.0.store(true, Relaxed);
        }
        r
    }
}

impl AsyncWrite for Wire {
    write_through!(stream);
}
