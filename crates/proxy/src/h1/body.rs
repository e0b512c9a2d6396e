//! Bodies on the HTTP/1 path: where one ends as its framing says, the request's
//! streamed from client to backend (counted against `max_request_body`), the
//! response's from backend to client, through pooled buffers; and the reads and
//! writes both sides use. They go through a shared reference (`Io`: readiness,
//! then `try_*`), so the upload and the answer of one exchange run at once in one task.

use super::buf::{Buf, SIZE};
use super::chunked::Chunked;
use super::io::Io;
use super::parse::Body;
use super::relay::Failed;
use crate::exchange::{Progress, after};
use crate::tracker::Tracker;
use std::io::{self, ErrorKind};
use std::ops::Range;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How sending the request went.
pub(crate) enum Sent {
    Done,
    /// The backend connection failed (or closed) while the request went up.
    Upstream,
    /// The client went quiet for `timeouts.idle` mid-body.
    Timeout,
    /// The client's body broke its framing, grew past `max_request_body` or ended early.
    Client(Failed),
}

pub(crate) fn framing(body: Body) -> Framing {
    match body {
        Body::None => Framing::Length(0),
        Body::Length(n) => Framing::Length(n),
        Body::Chunked => Framing::Chunked(Chunked::default()),
        Body::UntilClose => Framing::UntilClose,
    }
}

/// How an answer's body is read and passed on: as `framing` says, except that a
/// chunked one loses its framing on the way to an HTTP/1.0 client.
pub(crate) fn answer_framing(body: Body, http10: bool) -> Framing {
    match body {
        Body::Chunked if http10 => Framing::Dechunk(Chunked::default()),
        body => framing(body),
    }
}

/// Moves the body bytes at the front of `input` to `out`, counting its data in
/// `sent`; whether the body is complete, or why it broke (its framing, the limit).
pub(crate) fn take_body(
    framing: &mut Framing,
    input: &mut Buf,
    out: &mut Buf,
    sent: &mut u64,
    limit: u64,
) -> Result<bool, Failed> {
    let t = framing.take_into(input.unread(), &mut out.data).ok_or(Failed::BadBody)?;
    *sent += t.data;
    if limit > 0 && *sent > limit {
        return Err(Failed::TooLarge(limit));
    }
    input.consume(t.used);
    Ok(t.done)
}

/// What the request body's upload works with.
pub(crate) struct BodyUp<'a> {
    pub(crate) framing: &'a mut Framing,
    pub(crate) input: &'a mut Buf,
    pub(crate) sent: &'a mut u64,
    pub(crate) limit: u64,
    pub(crate) idle: Duration,
}

/// Streams the rest of the request body from `client` to `upstream`.
pub(crate) async fn send_body(b: BodyUp<'_>, upstream: &TcpStream, client: &impl Io, progress: &Progress) -> Sent {
    let mut out = Buf::take();
    loop {
        b.input.compact();
        match read(client, b.input, after(Instant::now(), b.idle)).await {
            Ok(0) | Err(Stop::Io) => return Sent::Client(Failed::ClientGone),
            Err(Stop::Timeout) => return Sent::Timeout,
            Ok(_) => {}
        }
        out.clear();
        let done = match take_body(b.framing, b.input, &mut out, b.sent, b.limit) {
            Ok(done) => done,
            Err(f) => return Sent::Client(f),
        };
        if write_all(upstream, &out.data, b.idle).await.is_err() {
            return Sent::Upstream;
        }
        if done {
            progress.finished();
            return Sent::Done;
        }
        progress.moved();
    }
}

pub(crate) enum Stop {
    Io,
    Timeout,
}

/// One read into `buf` (made room for first), by `at`.
pub(crate) async fn read(stream: &impl Io, buf: &mut Buf, at: Instant) -> Result<usize, Stop> {
    if buf.data.len() == buf.data.capacity() {
        buf.compact();
        if buf.data.len() == buf.data.capacity() {
            buf.data.reserve(SIZE);
        }
    }
    loop {
        match stream.try_read_buf(&mut buf.data) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return Err(Stop::Io),
        }
        match tokio::time::timeout_at(at, stream.readable()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Stop::Io),
            Err(_) => return Err(Stop::Timeout),
        }
    }
}

/// Writes all of `bytes`: at once when the socket takes them, else as it becomes
/// writable — failing once the peer took nothing for `patience` (a reader that
/// stopped reading never wedges the exchange).
pub(crate) async fn write_all(stream: &impl Io, mut bytes: &[u8], patience: Duration) -> io::Result<()> {
    while !bytes.is_empty() {
        match stream.try_write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => writable(stream, patience).await?,
            Err(e) => return Err(e),
        }
    }
    // TLS: what the session took still has to go out.
    while !stream.try_flush()? {
        writable(stream, patience).await?;
    }
    Ok(())
}

/// Waits for `stream` to take bytes, at most `patience`.
async fn writable(stream: &impl Io, patience: Duration) -> io::Result<()> {
    let at = after(Instant::now(), patience);
    tokio::time::timeout_at(at, stream.writable()).await.map_err(|_| ErrorKind::TimedOut)?
}

/// Where a body's end is, as its framing says.
pub(crate) enum Framing {
    Length(u64),
    Chunked(Chunked),
    /// Chunked, passed on as its chunk data alone (to an HTTP/1.0 client).
    Dechunk(Chunked),
    UntilClose,
}

/// The body's part of some input.
struct Take {
    /// Bytes that belong to the body.
    used: usize,
    /// Of those, data (not chunk framing): what counts against a limit.
    data: u64,
    /// The body ends after `used`.
    done: bool,
    /// Of those, trailer lines, not forwarded (empty at `used` if none).
    skip: Range<usize>,
}

impl Take {
    /// The forwarded pieces of `input`.
    fn pieces<'a>(&self, input: &'a [u8]) -> [&'a [u8]; 2] {
        [&input[..self.skip.start], &input[self.skip.end..self.used]]
    }
}

impl Framing {
    /// The body's part of `input`; `None` if it broke its chunked framing.
    fn take(&mut self, input: &[u8]) -> Option<Take> {
        match self {
            Framing::Length(left) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(input.len());
                *left -= n as u64;
                Some(Take { used: n, data: n as u64, done: *left == 0, skip: n..n })
            }
            Framing::Chunked(c) | Framing::Dechunk(c) => {
                c.feed(input).ok().map(|f| Take { used: f.used, data: f.data, done: f.done, skip: f.trailers })
            }
            Framing::UntilClose => {
                let n = input.len();
                Some(Take { used: n, data: n as u64, done: false, skip: n..n })
            }
        }
    }

    /// The body's part of `input`, with what goes on appended to `out`: all of it
    /// but trailers (`Dechunk`: the chunk data alone).
    fn take_into(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<Take> {
        if let Framing::Dechunk(c) = self {
            return dechunk_into(c, input, out);
        }
        let t = self.take(input)?;
        for piece in t.pieces(input) {
            out.extend_from_slice(piece);
        }
        Some(t)
    }
}

/// Reads `input` as chunked, appending only its chunk data to `out`: data runs are
/// fed whole, the framing between them a byte at a time.
fn dechunk_into(c: &mut Chunked, input: &[u8], out: &mut Vec<u8>) -> Option<Take> {
    let (mut i, mut data) = (0, 0);
    while i < input.len() {
        let run = usize::try_from(c.data_left()).unwrap_or(usize::MAX).min(input.len() - i);
        let fed = c.feed(&input[i..i + run.max(1)]).ok()?;
        if run > 0 {
            out.extend_from_slice(&input[i..i + fed.used]);
        }
        (i, data) = (i + fed.used, data + fed.data);
        if fed.done || fed.used == 0 {
            return Some(Take { used: i, data, done: fed.done, skip: i..i });
        }
    }
    Some(Take { used: i, data, done: false, skip: i..i })
}

/// Sends `out` (the head) with the body's first bytes from `up`, then the rest of
/// the body. `None` if the exchange broke (the client connection must close); else
/// whether the backend sent more than the body (its connection must not be reused).
pub(crate) async fn relay(
    mut framing: Framing,
    upstream: &TcpStream,
    up: &mut Buf,
    out: &mut Buf,
    client: &impl Io,
    tracker: &mut Tracker,
    idle: Duration,
) -> Option<bool> {
    let head = out.data.len();
    let Some(first) = framing.take_into(up.unread(), &mut out.data) else {
        // Broken in its first bytes: the head goes (with any data before the break)
        // and the body is cut, as when it breaks later (the client sees the
        // backend's status, as it is counted).
        let _ = write_all(client, &out.data, idle).await;
        return None;
    };
    up.consume(first.used);
    tracker.add_bytes(out.data.len() - head);
    write_all(client, &out.data, idle).await.ok()?;
    let mut done = first.done;
    while !done {
        up.clear();
        match read(upstream, up, after(Instant::now(), idle)).await {
            Ok(0) if matches!(framing, Framing::UntilClose) => return Some(true),
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if matches!(framing, Framing::Dechunk(_)) {
            out.clear();
            let t = framing.take_into(up.unread(), &mut out.data)?;
            write_all(client, &out.data, idle).await.ok()?;
            tracker.add_bytes(out.data.len());
            up.consume(t.used);
            done = t.done;
            continue;
        }
        let t = framing.take(up.unread())?;
        for piece in t.pieces(up.unread()).into_iter().filter(|p| !p.is_empty()) {
            write_all(client, piece, idle).await.ok()?;
            tracker.add_bytes(piece.len());
        }
        up.consume(t.used);
        done = t.done;
    }
    Some(!up.unread().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However the reads split a chunked body, an HTTP/1.0 client gets its chunk data
    /// alone, and the body ends where its framing says.
    #[test]
    fn dechunking_gives_the_same_data_whatever_the_reads() {
        let body: &[u8] = b"3;x=\"y\"\r\nabc\r\n10\r\n0123456789abcdef\r\n1\r\n!\r\n0\r\nT: v\r\n\r\nNEXT";
        let end = body.len() - 4;
        for size in 1..=body.len() {
            let (mut framing, mut out, mut at) = (answer_framing(Body::Chunked, true), Vec::new(), 0);
            let mut done = false;
            while !done {
                let read = &body[at..(at + size).min(body.len())];
                let t = framing.take_into(read, &mut out).unwrap();
                (at, done) = (at + t.used, t.done);
                assert!(done || t.used == read.len(), "stopped early at {at} (reads of {size})");
            }
            assert_eq!((out.as_slice(), at), (&b"abc0123456789abcdef!"[..], end), "reads of {size}");
        }
        let mut framing = answer_framing(Body::Chunked, true);
        assert!(framing.take_into(b"3\r\nabcX\r\n", &mut Vec::new()).is_none(), "broken framing");
    }
}
