//! The sockets of the HTTP/1 path, read and written through a shared reference
//! (readiness, then `try_*`), so the upload and the answer of one exchange run at
//! once in one task: the bare TCP stream (clients and backends) and TLS over it
//! (clients, `tls_io`). Nothing here waits while holding a buffer.

use std::future::{Future, poll_fn};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

/// A connection the HTTP/1 path reads and writes.
pub(crate) trait Io: Sync {
    /// Reads what is there into `buf`'s spare room; `WouldBlock` if nothing is,
    /// `Ok(0)` at the end.
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize>;
    /// Resolves once a read may find bytes (or the end).
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Takes what it can of `bytes` at once; `WouldBlock` if nothing.
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize>;
    /// Sends on what was taken but not sent yet; whether nothing is left.
    fn try_flush(&self) -> io::Result<bool>;
    /// Resolves once a write may take bytes.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Ends the write side (TLS: says so first), giving up after `patience`.
    fn shutdown(&mut self, patience: Duration) -> impl Future<Output = io::Result<()>> + Send;
    /// Closes with a reset (and over TLS without `close_notify`): the peer sees an
    /// error, not an end.
    fn abort(self);
}

impl Io for TcpStream {
    #[inline]
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let room = buf.capacity() - buf.len();
        read_draining(self, room, || TcpStream::try_read_buf(self, buf))
    }

    #[inline]
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        // The socket's own waker slot, not a waiter node: 8 bytes in the connection's
        // future instead of 152 (one task per connection, so one waiter per direction).
        poll_fn(|cx| self.poll_read_ready(cx))
    }

    #[inline]
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, bytes)
    }

    #[inline]
    fn try_flush(&self) -> io::Result<bool> {
        Ok(true)
    }

    #[inline]
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        poll_fn(|cx| self.poll_write_ready(cx))
    }

    async fn shutdown(&mut self, _patience: Duration) -> io::Result<()> {
        AsyncWriteExt::shutdown(self).await
    }

    fn abort(self) {
        // A zero linger makes the close a reset; it does not block.
        let _ = self.set_zero_linger();
    }
}

/// Runs `read`, a non-waiting read of at most `room` bytes from `tcp`. As nginx
/// does (`ngx_unix_recv`): a read that left room took all the socket had, so its
/// readiness is cleared, and the next read waits for the next epoll event instead
/// of spending a syscall on EAGAIN (one per request: the eager read after an
/// answer). Bytes that arrive after the read bring an event of their own
/// (edge-triggered), and tokio keeps readiness the driver set after the read began,
/// so nothing is missed.
pub(crate) fn read_draining(
    tcp: &TcpStream,
    room: usize,
    read: impl FnOnce() -> io::Result<usize>,
) -> io::Result<usize> {
    let mut short = None;
    let result = tcp.try_io(Interest::READABLE, || match read()? {
        n if n > 0 && n < room => {
            short = Some(n);
            Err(io::ErrorKind::WouldBlock.into())
        }
        n => Ok(n),
    });
    short.map_or(result, Ok)
}
