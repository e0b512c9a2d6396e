//! A client connection on the HTTP/1 path (plain or TLS). Between requests it waits
//! for readiness holding no buffer; then it reads into a pooled one, parses the
//! head in place, and answers, refuses or forwards it (`prepare`, `relay`),
//! pipelined requests in order. A connection that starts with the HTTP/2 preface,
//! or a request this path does not carry itself, goes to hyper with the bytes
//! read so far put back (`Rewind`).

use super::buf::Buf;
use super::io::Io;
use super::prepare::{Prepared, prepare};
use super::rewind::Rewind;
use super::{body, relay};
use crate::activity::{Conn, H2_PREFACE};
use crate::lifetime::ClientTimeouts;
use crate::server;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the connection's task was given.
pub(crate) struct Client<S> {
    pub(crate) stream: S,
    pub(crate) conn: Arc<Conn>,
    pub(crate) builder: Arc<auto::Builder<TokioExecutor>>,
    pub(crate) timeouts: ClientTimeouts,
    pub(crate) max_head: usize,
    pub(crate) stopped: watch::Receiver<bool>,
    pub(crate) peer: SocketAddr,
}

/// Serves the connection until it closes, times out or the listener stops.
pub(crate) async fn serve<S>(c: Client<S>)
where
    S: Io + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Client { stream, conn, builder, timeouts, max_head, mut stopped, peer } = c;
    let opened = Instant::now();
    let mut fresh = true;
    let mut pending: Option<Buf> = None;
    loop {
        // A buffer with nothing unread goes back to the pool here, before any wait.
        let mut buf = match pending.take().filter(|b| !b.unread().is_empty()) {
            Some(b) => b,
            None => {
                // Idle: no buffer held while waiting.
                let until = if fresh { opened + timeouts.header } else { Instant::now() + timeouts.idle };
                tokio::select! {
                    biased;
                    r = stream.readable() => if r.is_err() { return },
                    _ = stopped.wait_for(|s| *s) => return,
                    () = tokio::time::sleep_until(until) => return,
                }
                let mut b = Buf::take();
                match stream.try_read_buf(&mut b.data) {
                    Ok(0) => return,
                    Ok(_) => b,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(_) => return,
                }
            }
        };
        // Only the whole HTTP/2 preface goes to hyper: a request sent a byte at a time
        // (`P`, then `OST …`) is still read by this path's strict parser.
        while fresh && buf.unread().len() < H2_PREFACE.len() && H2_PREFACE.starts_with(buf.unread()) {
            match body::read(&stream, &mut buf, opened + timeouts.header).await {
                Ok(n) if n > 0 => {}
                _ => return,
            }
        }
        if fresh && buf.unread().starts_with(H2_PREFACE) {
            return Box::pin(hand_over(buf, stream, conn, builder, timeouts, stopped, peer)).await;
        }
        let head_until = if fresh { opened + timeouts.header } else { Instant::now() + timeouts.header };
        fresh = false;
        let prepared = loop {
            match prepare(&buf, &conn.proxy, max_head) {
                Prepared::Partial => match body::read(&stream, &mut buf, head_until).await {
                    Ok(n) if n > 0 => {}
                    _ => return,
                },
                p => break p,
            }
        };
        match prepared {
            Prepared::Partial => return,
            Prepared::Fallback => {
                conn.activity.handed_over();
                return Box::pin(hand_over(buf, stream, conn, builder, timeouts, stopped, peer)).await;
            }
            Prepared::Refuse(r) => {
                tracing::debug!(%peer, refusal = r.reason(), "refused a request head");
                conn.proxy.router().load().unrouted.count(r.status());
                let mut out = Buf::take();
                super::prepare::own_answer(&mut out.data, r.status(), &format!("{}\n", r.reason()), true);
                let _ = body::write_all(&stream, &out.data, timeouts.idle).await;
                return close(stream, buf, stopped).await;
            }
            Prepared::Answer { response, head_len, close: closing } => {
                buf.consume(head_len);
                if body::write_all(&stream, &response.data, timeouts.idle).await.is_err() || closing {
                    return close(stream, buf, stopped).await;
                }
            }
            Prepared::Forward(fwd) => {
                buf.consume(fwd.head_len);
                let stopping = *stopped.borrow();
                if !relay::forward(fwd, &stream, &mut buf, stopping).await {
                    return close(stream, buf, stopped).await;
                }
            }
        }
        // The listener stopped: this connection ends after its answer.
        if *stopped.borrow() {
            return close(stream, buf, stopped).await;
        }
        pending = Some(buf);
    }
}

/// Bytes and time a closing connection spends reading what the client still sends.
const LINGER_BYTES: usize = 1 << 20;
const LINGER: Duration = Duration::from_secs(2);

/// Closes the connection after its last answer: the write side first, then what the
/// client still sends (an unread body) is read and dropped for a moment, so the
/// kernel does not reset the connection before the client has read that answer
/// (nginx's lingering close). The listener's shutdown does not wait for this.
async fn close(mut stream: impl Io, mut buf: Buf, stopped: watch::Receiver<bool>) {
    drop(stopped);
    if stream.shutdown(LINGER).await.is_err() {
        return;
    }
    let until = Instant::now() + LINGER;
    let mut drained = 0;
    while drained < LINGER_BYTES {
        buf.clear();
        match body::read(&stream, &mut buf, until).await {
            Ok(n) if n > 0 => drained += n,
            _ => return,
        }
    }
}

/// Gives the connection, with what was read of it, to hyper.
async fn hand_over<S>(
    buf: Buf,
    stream: S,
    conn: Arc<Conn>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    timeouts: ClientTimeouts,
    stopped: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = Rewind::new(buf.unread().to_vec(), stream);
    drop(buf);
    server::connection(builder, stopped, io, conn, timeouts, peer).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::access_log::AccessLog;
    use crate::activity::Activity;
    use crate::forward::Proxy;
    use crate::table::RoutingTable;
    use tokio::net::TcpStream;

    /// What every idle connection holds is mostly this future (its size is that of its
    /// largest state, the exchange's): kept small so 10,000 idle connections fit in
    /// ~30 MiB. Inline upload and answer futures moved-then-pinned made it 4.6 KiB.
    #[tokio::test]
    async fn a_connections_future_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (_p, router) = crate::routes::channel(RoutingTable::empty());
        let proxy = Proxy::new(router, "127.0.0.1".parse().unwrap(), "http", AccessLog::off());
        let conn = Arc::new(Conn { proxy, activity: Activity::new(), _slot: None });
        let (_tx, stopped) = watch::channel(false);
        let timeouts = ClientTimeouts { header: Duration::from_secs(1), idle: Duration::from_secs(1) };
        let builder = Arc::new(server::builder(8192));
        let peer = "127.0.0.1:1".parse().unwrap();
        let client = Client { stream, conn, builder, timeouts, max_head: 8192, stopped, peer };
        let size = size_of_val(&serve(client));
        assert!(size < 3 * 1024, "a connection's future grew to {size} bytes");
    }
}
