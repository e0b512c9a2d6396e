//! A raw HTTP/1 client: writes whatever bytes a test wants and reads responses
//! one at a time (pipelining included), or notices the server closing. Over TCP,
//! or any other stream (TLS).

use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response as read off the socket.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The head (status line and header lines), lower-cased header names kept as sent.
    pub head: String,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw connection.
pub struct RawConn<S = TcpStream> {
    /// The socket, for tests that need it directly.
    pub stream: S,
    buf: Vec<u8>,
}

impl RawConn {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> RawConn {
        RawConn::over(TcpStream::connect(addr).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawConn<S> {
    /// Speaks over `stream` (a TLS stream, say).
    pub fn over(stream: S) -> RawConn<S> {
        RawConn { stream, buf: Vec::new() }
    }

    /// Writes `bytes`; false when the server already closed.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Shuts down the write side (the client's half-close).
    pub async fn shutdown_write(&mut self) {
        self.stream.shutdown().await.unwrap();
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Some(line);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn exactly(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Reads one complete response; `None` if the connection closed before one
    /// was complete (or the framing was unreadable).
    pub async fn response(&mut self) -> Option<RawResponse> {
        let status_line = self.line().await?;
        let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut head = status_line;
        let (mut length, mut chunked) = (None, false);
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
                match k.as_str() {
                    "content-length" => length = Some(v.parse::<usize>().ok()?),
                    "transfer-encoding" => chunked = v == "chunked",
                    _ => {}
                }
            }
            head.push('\n');
            head.push_str(&line);
        }
        let body = if (100..200).contains(&status) || status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            let mut body = Vec::new();
            loop {
                let size = usize::from_str_radix(self.line().await?.split(';').next()?.trim(), 16).ok()?;
                if size == 0 {
                    while !self.line().await?.is_empty() {}
                    break;
                }
                body.extend(self.exactly(size).await?);
                if !self.line().await?.is_empty() {
                    return None;
                }
            }
            body
        } else if let Some(n) = length {
            self.exactly(n).await?
        } else {
            while self.fill().await {}
            std::mem::take(&mut self.buf)
        };
        Some(RawResponse { status, head, body })
    }

    /// The next `n` bytes, whatever they are (a tunnel's); `None` if the connection
    /// closed first.
    pub async fn bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        self.exactly(n).await
    }

    /// Waits until the server closes the connection (a read returns 0 or fails);
    /// returns whatever arrived before that.
    pub async fn closed(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.buf)
    }
}
