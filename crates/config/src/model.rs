//! The validated config: what the rest of switchyard reads. Built only by `parse`.

use crate::Weight;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A whole, valid config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from, as given.
    pub source: PathBuf,
    /// `[runtime]`.
    pub runtime: Runtime,
    /// `[listener]`.
    pub listener: Listener,
    /// `[admin]`.
    pub admin: Admin,
    /// `[state]`.
    pub state: State,
    /// `[[service]]`, in file order; shared with the config of the last load where
    /// their text did not change (see `load_reusing`).
    pub services: Vec<std::sync::Arc<Service>>,
    /// `[cluster]`, when several replicas share traffic state.
    pub cluster: Option<Cluster>,
    /// Where each service's text was in the file, for `load_reusing` (a cache;
    /// equal in every config).
    pub segments: crate::Segments,
}

impl Config {
    /// The service of that name.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name).map(|s| &**s)
    }
}

/// `[runtime]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    /// Tokio worker threads; `None` = one per core.
    pub worker_threads: Option<usize>,
    /// How long in-flight requests may take after SIGTERM.
    pub shutdown_timeout: Duration,
}

/// `[listener]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Plain HTTP/1.1 and h2c.
    pub address: SocketAddr,
    /// Time to receive a request's headers.
    pub header_timeout: Duration,
    /// Client keep-alive idle time.
    pub idle_timeout: Duration,
    /// Larger request heads are answered 431.
    pub max_header_bytes: usize,
    /// Open client connections at most; at the limit the proxy stops accepting.
    pub max_connections: usize,
    /// Connections per backend at most; 0 = unlimited.
    pub max_upstream_connections: usize,
    /// Largest request body in bytes; 0 = unlimited.
    pub max_request_body: u64,
    /// Optional TLS listener.
    pub tls: Option<Tls>,
}

/// `[listener.tls]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    /// Where TLS is served.
    pub address: SocketAddr,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Admin API address.
    pub address: SocketAddr,
    /// The operator token's file (actor `api`).
    pub token_file: Option<PathBuf>,
    /// HMAC key for preview tokens.
    pub preview_key_file: Option<PathBuf>,
    /// Further named tokens.
    pub tokens: Vec<NamedToken>,
    /// Names (lower case, besides IPs and `localhost`) accepted in the `Host` header.
    pub hosts: Vec<String>,
}

/// `[[admin.tokens]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedToken {
    /// The actor in history.
    pub name: String,
    /// Where the secret is.
    pub file: PathBuf,
    /// What it may do.
    pub role: Role,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May change traffic.
    Operator,
    /// Read only.
    Viewer,
}

impl Role {
    /// The name the config file and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The state file (resolved against the config's folder).
    pub file: PathBuf,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// etcd endpoints, each `http://HOST:PORT`.
    pub etcd: Vec<String>,
    /// Key prefix, starting with `/`, without a trailing `/`.
    pub prefix: String,
    /// This replica's name; `None`: hostname:admin port.
    pub name: Option<String>,
    /// How long the replica's key outlives its last keep-alive.
    pub lease_ttl: Duration,
}

/// One `[[service]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Unique name.
    pub name: String,
    /// Lower-case host names; empty = catch-all.
    pub hosts: Vec<String>,
    /// Keep a client on one pool.
    pub sticky: Option<Sticky>,
    /// Header naming a pool per request (trusted networks only).
    pub override_header: Option<String>,
    /// Fewest healthy backends a pool needs to be given traffic.
    pub min_healthy: u32,
    /// Close upgraded connections this long after their pool lost all weight.
    pub drain_timeout: Option<Duration>,
    /// What the file says the traffic is.
    pub traffic: Traffic,
    /// Pools in file order (the order of sticky ranges).
    pub pools: Vec<Pool>,
    /// Active health checks.
    pub health: Option<Health>,
    /// Upstream timeouts.
    pub timeouts: Timeouts,
    /// `[service.rollout]`, defaults filled in.
    pub rollout: crate::RolloutSettings,
}

impl Service {
    /// Whether this service matches any host.
    pub fn is_catch_all(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The pool of that name.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }
}

/// How a client is kept on one pool.
#[derive(Debug, Clone, PartialEq)]
pub enum Sticky {
    /// A cookie the proxy sets.
    Cookie {
        /// Cookie name.
        name: String,
        /// Its `Max-Age`.
        max_age: Duration,
    },
    /// A header the client sends (e.g. a user id).
    Header {
        /// Header name, lower case.
        name: String,
    },
}

/// Each pool's share, in hundredths of a percent, for every pool of the service.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Traffic(pub BTreeMap<String, Weight>);

impl Traffic {
    /// All traffic to one pool; the others of `pools` get 0.
    pub fn all_to<'a>(pool: &str, pools: impl IntoIterator<Item = &'a str>) -> Traffic {
        Traffic(
            pools.into_iter().map(|p| (p.to_owned(), if p == pool { Weight::FULL } else { Weight::ZERO })).collect(),
        )
    }

    /// The pool with 100 %, if one has it.
    pub fn active(&self) -> Option<&str> {
        self.0.iter().find(|(_, w)| **w == Weight::FULL).map(|(p, _)| p.as_str())
    }

    /// The weight of a pool (0 when absent).
    pub fn weight(&self, pool: &str) -> Weight {
        self.0.get(pool).copied().unwrap_or_default()
    }
}

impl std::fmt::Display for Traffic {
    /// `blue=90 green=10`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (pool, w)) in self.0.iter().enumerate() {
            write!(f, "{}{pool}={w}", if i > 0 { " " } else { "" })?;
        }
        Ok(())
    }
}

/// `[service.pools.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Pool name (`blue`, `green`, …).
    pub name: String,
    /// `host:port` of each backend the file names.
    pub backends: Vec<String>,
    /// How the proxy talks to these backends.
    pub protocol: Protocol,
    /// `discover = true`: also the backends registered in the cluster store (§8).
    pub discover: bool,
    /// The backends discovered now (not in the file; filled in by the control path).
    pub discovered: Vec<String>,
}

impl Pool {
    /// Every backend: the file's, then the discovered ones not already listed.
    pub fn addresses(&self) -> impl Iterator<Item = &String> + Clone {
        self.backends.iter().chain(self.discovered.iter().filter(|d| !self.backends.contains(d)))
    }
}

/// Upstream protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 with prior knowledge.
    H2c,
}

/// `[service.health]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Probe path.
    pub path: String,
    /// `Host` header of the probe; `None` = the backend address.
    pub host: Option<String>,
    /// Time between probes.
    pub interval: Duration,
    /// Probe timeout.
    pub timeout: Duration,
    /// Consecutive successes to become healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures to become unhealthy.
    pub unhealthy_threshold: u32,
}

/// `[service.timeouts]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// TCP connect to a backend.
    pub connect: Duration,
    /// From the last request byte sent upstream until the response headers arrive.
    pub request: Duration,
    /// No byte moved in either direction of one exchange for this long: cut it.
    pub idle: Duration,
    /// Idle upstream connections are closed after this.
    pub pool_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            pool_idle: Duration::from_secs(90),
        }
    }
}
