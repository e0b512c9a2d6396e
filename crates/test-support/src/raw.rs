//! A hand-driven HTTP/1 upstream on `127.0.0.1:0`: each connection answers its first
//! `answers` requests with `conn-N` (N counts connections from 1), then reads the
//! next request and closes without answering — a backend closing a keep-alive
//! connection just as a request arrives. `/hold` waits for `release()`. Every request
//! and every close is reported, in order. Request bodies need a `Content-Length`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

/// What a `RawUpstream` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEvent {
    /// A request head arrived on connection `conn`; `line` is its request line.
    Request {
        /// Connection number, from 1.
        conn: usize,
        /// `GET /path HTTP/1.1`.
        line: String,
    },
    /// Connection `conn` is closed (by either side).
    Closed {
        /// Connection number, from 1.
        conn: usize,
    },
}

/// A running raw upstream; stops when dropped.
pub struct RawUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<RawEvent>>,
    task: JoinHandle<()>,
}

impl RawUpstream {
    /// Starts one whose connections answer `answers` requests each before closing on the next.
    pub async fn spawn(answers: usize) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let (count, g) = (accepted.clone(), gate.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conn = count.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(serve(conn, stream, answers, g.clone(), tx.clone()));
            }
        });
        RawUpstream { addr, accepted, gate, events: tokio::sync::Mutex::new(rx), task }
    }

    /// `127.0.0.1:PORT` for a config file.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Lets `n` held requests be answered.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// The next thing it saw.
    pub async fn next(&self) -> RawEvent {
        self.events.lock().await.recv().await.unwrap()
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    conn: usize,
    stream: TcpStream,
    answers: usize,
    gate: Arc<Semaphore>,
    events: mpsc::UnboundedSender<RawEvent>,
) {
    let mut stream = BufReader::new(stream);
    let mut served = 0;
    while let Some(line) = read_request(&mut stream).await {
        let _ = events.send(RawEvent::Request { conn, line: line.clone() });
        if served == answers {
            break;
        }
        if line.split(' ').nth(1) == Some("/hold") {
            gate.acquire().await.unwrap().forget();
        }
        let body = format!("conn-{conn}");
        let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
            break;
        }
        served += 1;
    }
    drop(stream);
    let _ = events.send(RawEvent::Closed { conn });
}

/// Reads one request (head and `Content-Length` body); its request line, or `None` at EOF.
async fn read_request(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.ok()?;
    Some(line.trim_end().to_owned())
}
