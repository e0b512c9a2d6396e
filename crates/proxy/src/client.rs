//! The upstream client: hyper-util's pooled client, one per pool (see `table`),
//! built at the pool's first h2c or upgrade request (most pools never need one).

use crate::body::RequestBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::OnceLock;
use switchyard_config::{Protocol, Timeouts};

/// A pooled keep-alive client to a pool's backends.
pub type UpstreamClient = Client<HttpConnector, RequestBody>;

/// Builds a client with the service's connect and idle timeouts.
fn new_client(timeouts: &Timeouts, protocol: Protocol) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeouts.connect));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(timeouts.pool_idle)
        // We retry connect failures ourselves, on another backend.
        .retry_canceled_requests(true)
        .set_host(false);
    if protocol == Protocol::H2c {
        builder.http2_only(true);
    }
    builder.build(connector)
}

/// A pool's client, built on first use.
pub(crate) struct LazyClient {
    timeouts: Timeouts,
    protocol: Protocol,
    /// Boxed: ~300 bytes a pool that never needs it does not carry.
    built: OnceLock<Box<UpstreamClient>>,
}

impl LazyClient {
    pub(crate) fn new(timeouts: &Timeouts, protocol: Protocol) -> LazyClient {
        LazyClient { timeouts: timeouts.clone(), protocol, built: OnceLock::new() }
    }

    pub(crate) fn get(&self) -> &UpstreamClient {
        self.built.get_or_init(|| Box::new(new_client(&self.timeouts, self.protocol)))
    }
}
