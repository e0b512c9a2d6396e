//! The component tier: the proxy's request handler called directly, without a client
//! socket, so that tests can run on tokio's paused clock. Upstreams stay real
//! sockets on `127.0.0.1:0`.
//!
//! A paused clock jumps to the next timer whenever the runtime has nothing to run,
//! which includes every wait for a socket: with only the proxy's own timers pending,
//! its request timeout would fire while a loopback answer is on its way. A `Ticker`
//! keeps a 1 ms timer pending, so time moves 1 ms per idle turn of the runtime, not
//! timeout by timeout.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use switchyard_config::Config;
use switchyard_proxy::{AccessLog, Proxy, ResponseBody, Router, RoutesPublisher, RoutingTable};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A proxy handler over a routing table, with its own metrics recorder.
pub struct Handler {
    /// The handler; `handle` takes any request body.
    pub proxy: Proxy,
    /// The write side of its snapshot.
    pub publisher: RoutesPublisher,
    /// The read side.
    pub router: Router,
    recorder: PrometheusRecorder,
}

impl Handler {
    /// A handler serving `config`; its metric handles record into this handler only.
    pub fn new(config: &Config) -> Handler {
        let recorder = PrometheusBuilder::new().build_recorder();
        let table = metrics::with_local_recorder(&recorder, || {
            let table = RoutingTable::build(config, None, 1);
            table.services().for_each(|s| s.resolve_metrics());
            table
        });
        let (publisher, router) = switchyard_proxy::channel(table);
        let proxy = Proxy::new(router.clone(), [127, 0, 0, 1].into(), "http", AccessLog::off());
        Handler { proxy, publisher, router, recorder }
    }

    /// Publishes a table built from `config`, keeping backends' state.
    pub fn apply(&self, config: &Config) {
        let current = self.publisher.current();
        let table = metrics::with_local_recorder(&self.recorder, || {
            let table = RoutingTable::build(config, Some(&current), current.generation() + 1);
            table.services().for_each(|s| s.resolve_metrics());
            table
        });
        self.publisher.publish(table);
    }

    /// `GET path` for host `shop`.
    pub async fn get(&self, path: &str) -> Response<ResponseBody> {
        self.proxy
            .handle(Request::get(path).header("host", "shop").body(http_body_util::Empty::<Bytes>::new()).unwrap())
            .await
    }

    /// `GET path` for host `shop`, read to its end: status and body text (or the body's error).
    pub async fn get_text(&self, path: &str) -> (StatusCode, Result<String, String>) {
        text(self.get(path).await).await
    }

    /// The value of a counter with these labels (among others), 0 when it has none yet.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let rendered = self.recorder.handle().render();
        let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        rendered
            .lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
            .filter_map(|l| l.split_once("} "))
            .filter(|(ls, _)| wanted.iter().all(|w| ls.split(',').any(|l| l == w)))
            .map(|(_, v)| v.trim().parse::<u64>().unwrap())
            .sum()
    }
}

/// A response read to its end: status and body text, or the error the body ended with.
pub async fn text(resp: Response<ResponseBody>) -> (StatusCode, Result<String, String>) {
    let status = resp.status();
    let body = resp.into_body().collect().await;
    (status, body.map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned()).map_err(|e| e.to_string()))
}

/// Keeps a 1 ms timer pending while it lives (see the module docs).
pub struct Ticker(JoinHandle<()>);

impl Ticker {
    /// Starts ticking on the current (paused) runtime.
    pub fn start() -> Ticker {
        Ticker(tokio::spawn(async {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A request body the test writes chunk by chunk; it ends when the sender is dropped.
pub struct ChannelBody(mpsc::Receiver<Bytes>);

/// A channel body and its sending end.
pub fn body_channel() -> (mpsc::Sender<Bytes>, ChannelBody) {
    let (tx, rx) = mpsc::channel(1);
    (tx, ChannelBody(rx))
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
