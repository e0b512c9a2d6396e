//! switchyard-proxy owns the data plane: the routing snapshot (`RoutingTable` in one
//! `ArcSwap`, read by `Router`, written only through `RoutesPublisher`), the
//! routing decision, and forwarding requests to backends: HTTP/1 (plain and TLS,
//! WebSocket tunnels included) on a wire path of its own (`h1`), HTTP/2 and the
//! rare hand-overs with hyper (HTTP/1 upstream connections pooled per backend and
//! driven inside the request's own task, `upstream`; hyper-util's client for h2c
//! and upgrades, `client`).
//!
//! It depends on switchyard-config only; never on control, admin, notify or toml.

mod accept;
mod access_log;
mod activity;
mod backend;
mod body;
mod choose;
mod client;
mod error;
mod exchange;
mod forward;
pub mod h1;
mod headers;
mod idle;
mod lifetime;
mod limits;
mod pick;
pub mod preview;
mod request_check;
mod routes;
mod sampler;
mod server;
mod service_route;
mod slots;
pub mod sticky;
mod table;
pub mod tls;
mod tracker;
mod upgrade;
mod upstream;
mod warm;
mod wire;
mod write_through;

pub use accept::Acceptor;
pub use access_log::{AccessLog, LogFormat};
pub use backend::{Backend, PoolStats};
pub use body::{BoxError, RequestBody, ResponseBody, UpstreamBody};
pub use error::ProxyError;
pub use exchange::IdleTimeout;
pub use forward::{Proxy, Refusal, Route};
pub use routes::{Router, RoutesPublisher, channel};
pub use sampler::{TICK, spawn_sampler};
pub use server::{ServerOptions, serve, serve_tls};
pub use service_route::{PoolRoute, ServiceRoute};
pub use table::RoutingTable;
pub use tracker::Tracker;
pub use warm::Warming;
