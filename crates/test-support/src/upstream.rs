//! A real HTTP upstream on `127.0.0.1:0` that answers with its name.
//!
//! Paths: `/hold` waits for `release()` (and reports its arrival), `/headers` echoes
//! the request headers, `/upload` counts the request body, `/download?bytes=N`
//! streams N bytes (pausing after the first chunk until `release()` when
//! `&pause=1`), `/status/N` answers N, `/trailers` sends the name then a
//! `grpc-status: 0` trailer; anything else answers the name.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

struct Shared {
    name: String,
    hits: AtomicUsize,
    /// Connections accepted so far, and those still open.
    accepted: AtomicUsize,
    open: AtomicUsize,
    gate: Semaphore,
    arrivals: mpsc::UnboundedSender<String>,
    /// Tells `connected` about each accept.
    accepts: tokio::sync::watch::Sender<usize>,
}

/// A running upstream; stops when dropped.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    arrivals: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Starts an upstream named `name` on a fresh loopback port.
    pub async fn spawn(name: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, listener)
    }

    /// Starts an upstream on a listener the caller bound (to restart on a known port).
    pub fn serve(name: &str, listener: TcpListener) -> Upstream {
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            name: name.into(),
            hits: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            gate: Semaphore::new(0),
            arrivals: tx,
            accepts: tokio::sync::watch::channel(0).0,
        });
        let s = shared.clone();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let s = s.clone();
                let mut stopped = stopped.clone();
                s.accepted.fetch_add(1, Ordering::SeqCst);
                s.accepts.send_modify(|n| *n += 1);
                s.open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let counts = s.clone();
                    let svc = service_fn(move |req| handle(s.clone(), req));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    // Dropping the connection on stop closes its socket.
                    tokio::select! {
                        _ = conn => {}
                        _ = stopped.wait_for(|s| *s) => {}
                    }
                    counts.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Upstream { addr, shared, stop, arrivals: tokio::sync::Mutex::new(rx), task }
    }

    /// `127.0.0.1:PORT` for a config file.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Requests answered or started so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Waits until `n` connections were accepted in all, at most `within`; whether they were.
    pub async fn connected(&self, n: usize, within: std::time::Duration) -> bool {
        let mut rx = self.shared.accepts.subscribe();
        tokio::time::timeout(within, rx.wait_for(|c| *c >= n)).await.is_ok_and(|r| r.is_ok())
    }

    /// Connections open now (closed ones are counted once their socket is dropped).
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Lets `n` held requests (or paused downloads) go on.
    pub fn release(&self, n: usize) {
        self.shared.gate.add_permits(n);
    }

    /// Waits until a held request or upload has arrived; returns its path.
    pub async fn arrived(&self) -> String {
        self.arrivals.lock().await.recv().await.unwrap()
    }

    /// Stops listening and closes every open connection; the port becomes free.
    pub fn stop(&self) {
        self.task.abort();
        let _ = self.stop.send(true);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into()).boxed()
}

async fn handle(s: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let resp = match path.as_str() {
        "/hold" => {
            let _ = s.arrivals.send(path.clone());
            s.gate.acquire().await.unwrap().forget();
            Response::new(full(s.name.clone()))
        }
        "/headers" => {
            let mut out = format!("version: {:?}\n", req.version());
            for (k, v) in req.headers() {
                out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
            }
            Response::new(full(out))
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut total = 0usize;
            let mut first = true;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Some(d) = frame.data_ref() {
                    total += d.len();
                    if first && !d.is_empty() {
                        first = false;
                        let _ = s.arrivals.send(path.clone());
                    }
                }
            }
            Response::new(full(format!("{} {total}", s.name)))
        }
        "/download" => download(&s, &query),
        "/trailers" => {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let frames =
                vec![Ok::<_, Infallible>(Frame::data(Bytes::from(s.name.clone()))), Ok(Frame::trailers(trailers))];
            Response::new(http_body_util::StreamBody::new(futures_lite_iter(frames)).boxed())
        }
        p if p.starts_with("/status/") => {
            let code = p["/status/".len()..].parse().unwrap_or(500);
            let mut r = Response::new(full(s.name.clone()));
            *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            r
        }
        _ => Response::new(full(s.name.clone())),
    };
    Ok(resp)
}

fn download(s: &Arc<Shared>, query: &str) -> Response<Body> {
    let param = |k: &str| query.split('&').find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')));
    let total: usize = param("bytes").and_then(|v| v.parse().ok()).unwrap_or(0);
    let pause = param("pause") == Some("1");
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let s = s.clone();
    tokio::spawn(async move {
        const CHUNK: usize = 64 * 1024;
        let mut sent = 0;
        while sent < total {
            let n = CHUNK.min(total - sent);
            if tx.send(Bytes::from(vec![b'x'; n])).await.is_err() {
                return;
            }
            if sent == 0 && pause {
                s.gate.acquire().await.unwrap().forget();
            }
            sent += n;
        }
    });
    Response::new(ChanBody(rx).boxed())
}

/// A stream over a fixed list of frames.
fn futures_lite_iter<T: Unpin>(items: Vec<T>) -> IterStream<T> {
    IterStream(items.into_iter())
}

struct IterStream<T>(std::vec::IntoIter<T>);

impl<T: Unpin> futures_core::Stream for IterStream<T> {
    type Item = T;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
        std::task::Poll::Ready(self.0.next())
    }
}

/// A body fed by a channel, so the test decides when each chunk goes out.
struct ChanBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
