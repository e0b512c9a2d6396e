//! A backend that accepts WebSocket upgrades at the byte level: it records each
//! request head it reads, answers a head asking for `Upgrade: websocket` with a
//! `101` followed at once by [`Switching::EARLY`], and from then on echoes every
//! byte it reads. Any other request gets a keep-alive `200` saying `plain`.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The backend; see the module docs.
pub struct Switching {
    addr: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Switching {
    /// What the backend sends right after its `101`, before reading anything more.
    pub const EARLY: &'static [u8] = b"early-from-backend";
    /// Its `101`.
    pub const ANSWER: &'static [u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

    /// Listens on `127.0.0.1:0`.
    pub async fn spawn() -> Switching {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, seen.clone()));
            }
        });
        Switching { addr, heads }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        self.addr.clone()
    }

    /// The request heads read so far (each up to and including its blank line).
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            buf.drain(..end + 4);
            let upgrade = head.to_ascii_lowercase().contains("\r\nupgrade: websocket\r\n");
            heads.lock().unwrap().push(head);
            if upgrade {
                let mut answer = Switching::ANSWER.to_vec();
                answer.extend_from_slice(Switching::EARLY);
                answer.extend_from_slice(&buf);
                if stream.write_all(&answer).await.is_err() {
                    return;
                }
                return echo(stream).await;
            }
            if stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain").await.is_err() {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn echo(mut stream: TcpStream) {
    let mut chunk = [0u8; 8192];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 || stream.write_all(&chunk[..n]).await.is_err() {
            return;
        }
    }
}
