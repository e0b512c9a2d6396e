//! TLS under the HTTP/1 path: the rustls session taken over from the handshake,
//! over the bare TCP stream, read and written through a shared reference like the
//! plain socket (`Io`), so the upload and the answer of one exchange still run at
//! once in one task. The session sits behind a mutex that is never held across a
//! wait (one task uses it: never contended). It is also an `AsyncRead`/`AsyncWrite`
//! for a connection handed to hyper (a service with an h2c pool) and for a WebSocket
//! tunnel.

use super::io::Io;
use rustls::ServerConnection;
use std::future::Future;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A client connection over TLS, after its handshake.
pub(crate) struct TlsIo {
    tcp: TcpStream,
    session: Mutex<Session>,
}

struct Session {
    tls: ServerConnection,
    /// `close_notify` went into the send queue.
    closing: bool,
}

impl TlsIo {
    pub(crate) fn new(tcp: TcpStream, tls: ServerConnection) -> TlsIo {
        TlsIo { tcp, session: Mutex::new(Session { tls, closing: false }) }
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decrypts what arrived and gives up to `room` bytes of plaintext to `take`;
    /// `WouldBlock` when a record is not complete yet, `Ok(0)` at the end.
    fn read_with(
        &self,
        room: usize,
        take: impl FnOnce(&mut rustls::Reader<'_>, usize) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut s = self.session();
        let tls = &mut s.tls;
        loop {
            let state = match tls.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // The alert rustls queued goes out if it can.
                    let _ = push(tls, &self.tcp);
                    return Err(io::Error::new(ErrorKind::InvalidData, e));
                }
            };
            let ready = state.plaintext_bytes_to_read();
            if ready > 0 {
                return take(&mut tls.reader(), ready.min(room));
            }
            if state.peer_has_closed() || room == 0 {
                return Ok(0);
            }
            // What rustls has to say (alerts, key updates, tickets) goes first.
            push(tls, &self.tcp)?;
            if tls.read_tls(&mut Try(&self.tcp))? == 0 {
                return Ok(0);
            }
        }
    }

    /// Queues `close_notify` (once).
    fn close_notify(&self) {
        let mut s = self.session();
        if !s.closing {
            s.closing = true;
            s.tls.send_close_notify();
        }
    }

    /// Whether plaintext (or the end) is already waiting, no socket read needed.
    fn buffered(&self) -> bool {
        let mut s = self.session();
        s.tls.process_new_packets().map_or(true, |st| st.plaintext_bytes_to_read() > 0 || st.peer_has_closed())
    }
}

/// Writes what rustls has queued, as far as the socket takes it; whether all went.
fn push(tls: &mut ServerConnection, tcp: &TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut Try(tcp)) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The socket as `Read`/`Write` that never waits (`WouldBlock` instead).
struct Try<'a>(&'a TcpStream);

impl Read for Try<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = buf.len();
        super::io::read_draining(self.0, room, || self.0.try_read(buf))
    }
}

impl Write for Try<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Io for TlsIo {
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let room = buf.capacity() - buf.len();
        self.read_with(room, |reader, n| {
            let at = buf.len();
            buf.resize(at + n, 0);
            let got = reader.read(&mut buf[at..]);
            buf.truncate(at + *got.as_ref().unwrap_or(&0));
            got
        })
    }

    async fn readable(&self) -> io::Result<()> {
        if self.buffered() {
            return Ok(());
        }
        Io::readable(&self.tcp).await
    }

    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        let mut s = self.session();
        let tls = &mut s.tls;
        // What is queued goes first: the queue does not grow while the peer is not reading.
        if !push(tls, &self.tcp)? {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = tls.writer().write(bytes)?;
        push(tls, &self.tcp)?;
        if n == 0 && !bytes.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn try_flush(&self) -> io::Result<bool> {
        push(&mut self.session().tls, &self.tcp)
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        Io::writable(&self.tcp)
    }

    fn abort(self) {
        self.tcp.abort();
    }

    async fn shutdown(&mut self, patience: Duration) -> io::Result<()> {
        self.close_notify();
        let until = tokio::time::Instant::now() + patience;
        while !self.try_flush()? {
            tokio::time::timeout_at(until, Io::writable(&self.tcp)).await.map_err(|_| ErrorKind::TimedOut)??;
        }
        tokio::io::AsyncWriteExt::shutdown(&mut self.tcp).await
    }
}

impl AsyncRead for TlsIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let room = buf.remaining();
            match self.read_with(room, |reader, n| reader.read(&mut buf.initialize_unfilled()[..n])) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => ready!(self.tcp.poll_read_ready(cx))?,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match Io::try_write(&*self, bytes) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => ready!(self.tcp.poll_write_ready(cx))?,
                done => return Poll::Ready(done),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.try_flush()? {
            ready!(self.tcp.poll_write_ready(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close_notify();
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
