//! A client connection on the HTTP/1 path (plain or TLS). Between requests it waits
//! for readiness holding no buffer, and after `PARK_AFTER` of quiet its task ends:
//! a small one (`parked`) waits instead, and a new one serves the connection when
//! bytes come (an idle keep-alive connection costs ~0.5 KiB of task, not ~2.4).
//! On readiness it reads into a pooled buffer, parses the
//! head in place, and answers, refuses or forwards it (`prepare`, `relay`),
//! pipelined requests in order; a WebSocket the backend accepts becomes a tunnel.
//! A connection that starts with the HTTP/2 preface, or a request this path does
//! not carry itself, goes to hyper with the bytes read so far put back (`Rewind`).

use super::body;
use super::buf::Buf;
use super::io::Io;
use super::prepare::{Prepared, prepare};
use super::relay::{self, Next, Switched};
use super::rewind::Rewind;
use crate::activity::{Conn, H2_PREFACE};
use crate::lifetime::ClientTimeouts;
use crate::server;
use crate::upgrade::Tunnel;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use std::future::Future;
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

/// A connection quiet this long gives its task up for a small one (`parked`).
const PARK_AFTER: Duration = Duration::from_millis(500);

/// Where a connection is when a task takes it up.
#[derive(Clone, Copy)]
enum Since {
    /// Opened then (accepted; with TLS, before its handshake), no request yet: its
    /// first head is due `timeouts.header` after that.
    Opened(Instant),
    /// Between requests: closed unless bytes come by then (`timeouts.idle` after
    /// the last answer, however often the connection woke without bytes).
    Idle(Instant),
}

impl Since {
    /// When the connection closes if no bytes come.
    fn deadline(self, timeouts: &ClientTimeouts) -> Instant {
        match self {
            Since::Opened(at) => at + timeouts.header,
            Since::Idle(until) => until,
        }
    }
}

/// Serves the connection opened at `opened` until it closes, times out or the
/// listener stops.
pub(crate) async fn serve<S>(c: Client<S>, opened: Instant)
where
    S: Io + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_from(c, Since::Opened(opened)).await;
}

async fn serve_from<S>(c: Client<S>, since: Since)
where
    S: Io + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Client { stream, conn, builder, timeouts, max_head, mut stopped, peer } = c;
    let (mut fresh, opened, mut idle_until) = match since {
        Since::Opened(at) => (true, at, None),
        Since::Idle(until) => (false, Instant::now(), Some(until)),
    };
    let mut pending: Option<Buf> = None;
    loop {
        // A buffer with nothing unread goes back to the pool here, before any wait.
        let mut buf = match pending.take().filter(|b| !b.unread().is_empty()) {
            Some(b) => b,
            None => {
                // Idle: no buffer held while waiting.
                let until = if fresh {
                    opened + timeouts.header
                } else {
                    *idle_until.get_or_insert_with(|| Instant::now() + timeouts.idle)
                };
                let park_at = Instant::now() + PARK_AFTER;
                let quiet = tokio::select! {
                    biased;
                    r = stream.readable() => if r.is_err() { return } else { false },
                    _ = stopped.wait_for(|s| *s) => return,
                    () = tokio::time::sleep_until(until.min(park_at)) => true,
                };
                if quiet {
                    if park_at < until {
                        let c = Client { stream, conn, builder, timeouts, max_head, stopped, peer };
                        park(c, if fresh { Since::Opened(opened) } else { Since::Idle(until) });
                    }
                    return;
                }
                let mut b = Buf::take();
                match stream.try_read_buf(&mut b.data) {
                    Ok(0) => return,
                    Ok(_) => {
                        idle_until = None;
                        b
                    }
                    // (TLS: a record not complete yet, or one without data.)
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
                match relay::forward(fwd, &stream, &mut buf, stopping).await {
                    Next::KeepAlive => {}
                    Next::Close => return close(stream, buf, stopped).await,
                    Next::Cut => return stream.abort(),
                    Next::Upgrade(switched) => return tunnel(*switched, stream, buf, conn),
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

/// Hands a quiet connection to a task of its own that only waits for it.
fn park<S>(c: Client<S>, since: Since)
where
    S: Io + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(parked(c, since));
}

/// Waits for a parked connection's next bytes (or its deadline, or the listener's
/// stop), then serves it from a new task: this one's future stays small. (An
/// `async move` block, not an `async fn`: the latter would copy `c` into a local
/// and keep room for both.)
#[allow(clippy::manual_async_fn)]
fn parked<S>(mut c: Client<S>, since: Since) -> impl Future<Output = ()> + Send
where
    S: Io + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async move {
        let until = since.deadline(&c.timeouts);
        tokio::select! {
            biased;
            r = c.stream.readable() => if r.is_err() { return },
            _ = c.stopped.wait_for(|s| *s) => return,
            () = tokio::time::sleep_until(until) => return,
        }
        resume(c, since);
    }
}

fn resume<S>(c: Client<S>, since: Since)
where
    S: Io + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(serve_from(c, since));
}

/// Carries a WebSocket the backend accepted, in a task of its own as hyper's tunnels
/// are (the listener's shutdown does not wait for it): what either side sent early
/// goes across first, then bytes both ways until either side closes or the pool's
/// `drain_timeout` passes. The connection keeps its place under `max_connections`
/// (`conn`) and its upstream slot until then.
fn tunnel<S>(switched: Switched, mut client: S, from_client: Buf, conn: Arc<Conn>)
where
    S: Io + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Switched { mut upstream, early, route, open } = switched;
    let t = Tunnel::of(conn.proxy.router().clone(), &route);
    let patience = route.service.timeouts.idle;
    drop(route);
    tokio::spawn(async move {
        let (_open, _conn) = (open, conn);
        if body::write_all(&client, early.unread(), patience).await.is_err()
            || body::write_all(&upstream.stream, from_client.unread(), patience).await.is_err()
        {
            return;
        }
        drop((early, from_client));
        t.splice(&mut client, &mut upstream.stream).await;
    });
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

    /// A connection to the proxy (routing nothing: every request gets 404), and the
    /// client's end of it.
    async fn client(idle: Duration) -> (Client<TcpStream>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let outside = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let (_p, router) = crate::routes::channel(RoutingTable::empty());
        let proxy = Proxy::new(router, "127.0.0.1".parse().unwrap(), "http", AccessLog::off());
        let conn = Arc::new(Conn { proxy, activity: Activity::new(), _slot: None });
        let (tx, stopped) = watch::channel(false);
        // The sender lives as long as the test: the listener never stops.
        std::mem::forget(tx);
        let timeouts = ClientTimeouts { header: Duration::from_secs(5), idle };
        let builder = Arc::new(server::builder(8192));
        (Client { stream, conn, builder, timeouts, max_head: 8192, stopped, peer }, outside)
    }

    /// What a busy connection holds is mostly its task's future (its size is that of
    /// its largest state, the exchange's); a quiet one only the parked task's.
    /// Inline upload and answer futures moved-then-pinned made the first 4.6 KiB.
    #[tokio::test]
    async fn a_connections_futures_stay_small() {
        let (c, _outside) = client(Duration::from_secs(1)).await;
        let size = size_of_val(&serve(c, Instant::now()));
        assert!(size < 3 * 1024, "a connection's future grew to {size} bytes");
        let (c, _outside) = client(Duration::from_secs(1)).await;
        let size = size_of_val(&parked(c, Since::Opened(Instant::now())));
        assert!(size < 768, "a parked connection's future grew to {size} bytes");
    }

    /// A GET on `outside` and the proxy's whole 404 answer to it.
    async fn not_found(outside: &mut TcpStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        outside.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap();
                if body.len() >= length.parse::<usize>().unwrap() {
                    assert!(head.starts_with("HTTP/1.1 404 "), "{text}");
                    return;
                }
            }
            let mut chunk = [0u8; 1024];
            let n = outside.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed; got {text:?}");
            got.extend_from_slice(&chunk[..n]);
        }
    }

    #[tokio::test]
    async fn a_quiet_connection_is_parked_served_again_and_closed_at_its_idle_timeout() {
        use tokio::io::AsyncReadExt;
        let (c, mut outside) = client(Duration::from_secs(2)).await;
        let task = tokio::spawn(serve(c, Instant::now()));
        not_found(&mut outside).await;
        // Quiet past PARK_AFTER: the connection's task ends, the connection stays open.
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("parked").unwrap();
        not_found(&mut outside).await;
        // Parked or not, it closes once quiet for `timeouts.idle`.
        let started = Instant::now();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), outside.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?} {rest:?}");
        assert!(started.elapsed() >= Duration::from_secs(2) - Duration::from_millis(50));
    }
}
