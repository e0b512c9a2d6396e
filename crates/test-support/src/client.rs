//! Clients for tests: one kept-alive HTTP/1.1 connection, and raw bytes.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One client connection; every request goes over the same socket.
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Opens a keep-alive HTTP/1.1 connection to `addr`.
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        Conn { send }
    }

    /// `GET path` with that `Host`; returns status and body text.
    pub async fn get(&mut self, host: &str, path: &str) -> (StatusCode, String) {
        let req = Request::get(path).header("host", host).body(Full::default()).unwrap();
        self.send(req).await
    }

    /// Sends any request; returns status and body text.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> (StatusCode, String) {
        self.send.ready().await.unwrap();
        let resp = self.send.send_request(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Whether the connection is still usable.
    pub fn is_open(&self) -> bool {
        !self.send.is_closed()
    }
}

/// Writes `bytes` to `addr` and reads what comes back until the server closes
/// (or 5 s pass); returns it as text.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
