//! The request lifecycle: route on one snapshot load, forward, retry a refused
//! connect once on another backend, stream the answer back, record it once.

use crate::access_log::{AccessLog, Pending};
use crate::backend::Backend;
use crate::body::{BoxError, Inbound, RequestBody, ResponseBody};
use crate::choose::{Fields, choose_pool};
use crate::error::ProxyError;
use crate::exchange;
use crate::headers;
use crate::limits::{self, Limited};
use crate::preview;
use crate::request_check::{self, Reject};
use crate::routes::Router;
use crate::service_route::{PoolRoute, ServiceRoute};
use crate::table::RoutingTable;
use crate::tracker::Tracker;
use crate::upgrade::{self, Tunnel};
use crate::upstream::{self, SendError, Target};
use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header};
use http_body::Body;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use switchyard_metrics::StatusCounters;

/// What the routing decision picked; owned, so no snapshot guard is held across `.await`.
pub struct Route {
    /// The service (from the snapshot the decision was made on).
    pub service: Arc<ServiceRoute>,
    /// Index of the pool in `service.pools`.
    pub pool: usize,
    /// Index of the backend in the pool's `backends`.
    pub backend: usize,
    /// `Set-Cookie` for a client that got a new sticky key with this request.
    pub set_cookie: Option<String>,
}

/// Why a request could not be routed to a backend.
pub enum Refusal {
    /// No service matches the host.
    NoService {
        /// The host asked for.
        host: String,
        /// Where such requests are counted.
        counters: Arc<StatusCounters>,
    },
    /// The chosen pool has no healthy backend.
    NoHealthy {
        /// The service.
        service: Arc<ServiceRoute>,
        /// Index of the chosen pool.
        pool: usize,
    },
}

impl Route {
    pub(crate) fn pool(&self) -> &PoolRoute {
        &self.service.pools[self.pool]
    }

    /// The chosen backend (kept alive by the service `Arc`).
    pub fn backend(&self) -> &Arc<Backend> {
        &self.pool().backends[self.backend]
    }
}

/// Per-connection request handler.
#[derive(Clone)]
pub struct Proxy {
    router: Router,
    client_ip: IpAddr,
    /// `client_ip` as a header value, made once per connection.
    client_header: HeaderValue,
    proto: &'static str,
    log: AccessLog,
    /// `max_request_body`; 0 = unlimited.
    max_body: u64,
}

static ROOT: PathAndQuery = PathAndQuery::from_static("/");
pub(crate) static PREVIEW_HEADER: http::HeaderName = http::HeaderName::from_static(preview::HEADER);

impl Proxy {
    /// A handler for requests from `client_ip`; `proto` is `http` or `https`.
    pub fn new(router: Router, client_ip: IpAddr, proto: &'static str, log: AccessLog) -> Proxy {
        Proxy { router, client_ip, client_header: headers::client_value(client_ip), proto, log, max_body: 0 }
    }

    /// Limits request bodies to `limit` bytes (`max_request_body`; 0 = unlimited).
    #[must_use]
    pub fn with_max_request_body(mut self, limit: u64) -> Proxy {
        self.max_body = limit;
        self
    }

    /// The access log, the client's address (text and header value) and `http`/`https`.
    pub(crate) fn client(&self) -> (&AccessLog, IpAddr, &HeaderValue, &'static str) {
        (&self.log, self.client_ip, &self.client_header, self.proto)
    }

    /// `max_request_body`; 0 = unlimited.
    pub(crate) fn max_body(&self) -> u64 {
        self.max_body
    }

    /// The routing snapshot's reader.
    pub(crate) fn router(&self) -> &Router {
        &self.router
    }

    /// Routes one request: host → service → pool → backend, on one snapshot load.
    pub fn route<B>(&self, req: &Request<B>) -> Result<Route, Refusal> {
        self.route_fields(request_host_bytes(req), req.headers())
    }

    /// Routes a request for `host` with header lines `fields` (hyper's map or the
    /// HTTP/1 path's parsed slices): the one routing decision of both paths.
    pub(crate) fn route_fields<F: Fields + ?Sized>(&self, host: &[u8], req: &F) -> Result<Route, Refusal> {
        let table = self.router.load();
        let Some(service) = table.route(host) else { return Err(no_service(host, &table)) };
        decide(service, req, table.preview_key())
    }

    /// Handles one request end to end; never fails, every failure is a response.
    /// Generic over the request body so that tests can call it without a client
    /// socket; hyper's `Incoming` goes through unboxed (see `body::Inbound`).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let start = Instant::now();
        let mut log = self.log.begin(&req, self.client_ip);
        if req.method() == Method::CONNECT {
            let counters = self.router.load().unrouted.clone();
            return answer(ProxyError::MethodNotAllowed, |s| counters.count(s), log, start);
        }
        if let Err(reject) = request_check::check_head(req.version(), req.headers()) {
            let counters = self.router.load().unrouted.clone();
            return reject.answer(req.version(), |s| counters.count(s), log, start);
        }
        match self.route(&req) {
            // A declared length over the limit: refused before anything goes upstream.
            Ok(route) if self.max_body > 0 && req.body().size_hint().lower() > self.max_body => {
                self.too_large(&route, req.version(), log, start)
            }
            Ok(route) => self.forward(route, req, log, start).await,
            Err(Refusal::NoService { host, counters }) => {
                answer(ProxyError::NoService { host }, |s| counters.count(s), log, start)
            }
            Err(Refusal::NoHealthy { service, pool }) => {
                if let Some(l) = &mut log {
                    l.routed(&service, pool, None);
                }
                let p = &service.pools[pool];
                let e = ProxyError::NoHealthyBackend { service: service.name.clone(), pool: p.name.clone() };
                answer(e, |s| counted(p, s, start), log, start)
            }
        }
    }

    /// 413 for a body over `max_request_body`, counted under the routed pool.
    fn too_large(
        &self,
        route: &Route,
        version: Version,
        mut log: Option<Box<Pending>>,
        start: Instant,
    ) -> Response<ResponseBody> {
        if let Some(l) = &mut log {
            l.routed(&route.service, route.pool, None);
        }
        let p = route.pool();
        let reject =
            Reject::BodyTooLarge { service: route.service.name.clone(), pool: p.name.clone(), limit: self.max_body };
        reject.answer(version, |s| counted(p, s, start), log, start)
    }

    async fn forward<B>(
        &self,
        mut route: Route,
        mut req: Request<B>,
        mut log: Option<Box<Pending>>,
        start: Instant,
    ) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // The host the request was routed by is the host the backend sees.
        let host = match req.uri().authority() {
            Some(a) => HeaderValue::from_str(headers::authority_host(a.as_str())).ok(),
            None => req.headers().get(header::HOST).cloned(),
        };
        let version = req.version();
        // Only WebSocket is tunnelled; any other Upgrade is dropped below with the hop-by-hop headers.
        let wants_upgrade = version == Version::HTTP_11 && upgrade::is_websocket(req.headers());
        let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut req));
        // hyper-util's client carries h2c and upgrades; plain HTTP/1 stays in this task.
        let in_task = !route.pool().is_h2c() && client_upgrade.is_none();
        let (mut parts, body) = req.into_parts();
        let body = Limited::new(Inbound::new(body), self.max_body);
        // `TE: trailers` is hop-by-hop, but gRPC over an HTTP/2 upstream needs it.
        let te_trailers = route.pool().is_h2c() && headers::wants_trailers(&parts.headers);
        headers::strip_hop_by_hop(&mut parts.headers);
        if te_trailers {
            parts.headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
        if wants_upgrade {
            upgrade::restore(&mut parts.headers, upgrade::WEBSOCKET.clone());
        }
        headers::add_forwarded(&mut parts.headers, &self.client_header, self.proto, host);
        // Routing inputs that are the proxy's own are not forwarded.
        headers::scrub_cookies(&mut parts.headers, preview::COOKIE);
        parts.headers.remove(&PREVIEW_HEADER);
        if let Some(name) = &route.service.override_header {
            parts.headers.remove(name);
        }
        parts.version = Version::HTTP_11;
        let path = parts.uri.path_and_query().cloned().unwrap_or_else(|| ROOT.clone());

        // A second backend can only be tried if the first attempt leaves the request intact.
        // The in-task client hands back a request it could not connect for; hyper-util's
        // consumes it, so for that one a copy of the head and a take-once body are kept.
        let can_retry = route.pool().backends.len() > 1;
        let (first_body, spare) = match (can_retry && !in_task, body.is_end_stream()) {
            (false, _) => (RequestBody::direct(body), None),
            (true, true) => (RequestBody::direct(body), Some((parts.clone(), RequestBody::empty()))),
            (true, false) => {
                let (a, b) = RequestBody::shared(body);
                (a, Some((parts.clone(), b)))
            }
        };

        let first = send(&route, Request::from_parts(parts, first_body), &path, in_task, start).await;
        let set_cookie = route.set_cookie.take();
        let (route, result) = match first {
            Err((Failure::Connect, back)) if can_retry => {
                let again = back.or_else(|| spare.map(|(parts, body)| Request::from_parts(parts, body)));
                match (again, route.pool().pick(Some(route.backend))) {
                    (Some(req), Some(next)) => {
                        let next =
                            Route { service: route.service.clone(), pool: route.pool, backend: next, set_cookie: None };
                        tracing::debug!(service = %next.service.name, backend = next.backend().address(), "retrying on another backend");
                        next.pool().metrics.retry_connect();
                        let r = send(&next, req, &path, in_task, start).await;
                        (next, r)
                    }
                    _ => (route, Err((Failure::Connect, None))),
                }
            }
            first => (route, first),
        };
        if let Some(l) = &mut log {
            l.routed(&route.service, route.pool, Some(route.backend));
        }
        match result {
            Ok(mut resp) => {
                if let (Some(client), StatusCode::SWITCHING_PROTOCOLS) = (client_upgrade, resp.status()) {
                    Tunnel::of(self.router.clone(), &route).spawn(client, hyper::upgrade::on(&mut resp));
                }
                if let Some(v) = set_cookie.and_then(|c| HeaderValue::try_from(c).ok()) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
                if let ResponseBody::Upstream(u) = resp.body_mut() {
                    u.tracker.set_log(log);
                }
                resp
            }
            // The body grew past max_request_body before the backend answered.
            Err((Failure::TooLarge, _)) => self.too_large(&route, version, log, start),
            Err((f, _)) => {
                let (service, pool, backend) =
                    (route.service.name.clone(), route.pool().name.clone(), route.backend().address().into());
                tracing::warn!(%service, %pool, %backend, failure = ?f, "upstream request failed");
                let e = match f {
                    Failure::Connect => ProxyError::Unreachable { service, pool, backend },
                    Failure::Timeout => ProxyError::Timeout { service, pool, backend },
                    Failure::Busy => ProxyError::Busy { service, pool, backend },
                    Failure::Other | Failure::TooLarge => ProxyError::Upstream { service, pool, backend },
                };
                let p = route.pool();
                answer(e, |s| counted(p, s, start), log, start)
            }
        }
    }
}

/// The refusal for a host no service matches.
pub(crate) fn no_service(host: &[u8], table: &RoutingTable) -> Refusal {
    let host = String::from_utf8_lossy(host).into_owned();
    Refusal::NoService { host, counters: table.unrouted.clone() }
}

/// Pool and backend for a request to `service` (the rest of the routing decision).
pub(crate) fn decide<F: Fields + ?Sized>(
    service: &Arc<ServiceRoute>,
    req: &F,
    key: Option<&preview::PreviewKey>,
) -> Result<Route, Refusal> {
    let (pool, set_cookie) = choose_pool(service, req, key);
    match service.pools[pool].pick(None) {
        Some(backend) => Ok(Route { service: service.clone(), pool, backend, set_cookie }),
        None => Err(Refusal::NoHealthy { service: service.clone(), pool }),
    }
}

/// Counts the proxy's own answer on the pool it was routed to: in its metrics and
/// in its live figures (time to that answer).
pub(crate) fn counted(pool: &PoolRoute, status: u16, start: Instant) {
    let elapsed = start.elapsed();
    pool.metrics.record(status, elapsed);
    pool.stats.record(status, elapsed);
}

/// The proxy's own answer, counted by `count` and logged.
fn answer(e: ProxyError, count: impl FnOnce(u16), log: Option<Box<Pending>>, start: Instant) -> Response<ResponseBody> {
    let resp = e.into_response();
    let status = resp.status().as_u16();
    count(status);
    if let Some(l) = log {
        l.finish(status, resp.body().size_hint().exact().unwrap_or(0), start.elapsed());
    }
    resp
}

#[derive(Debug)]
enum Failure {
    Connect,
    Timeout,
    /// At `max_upstream_connections` with none coming free in time.
    Busy,
    /// The client's body grew past `max_request_body` (not the backend's failure).
    TooLarge,
    Other,
}

/// `Other`, or `TooLarge` when the exchange broke on the client's body limit.
fn broke(e: &(dyn std::error::Error + 'static)) -> Failure {
    if limits::is_too_large(e) { Failure::TooLarge } else { Failure::Other }
}

/// Sends one attempt. A request that never left (no connection could be made to
/// the backend) comes back with the failure when the client allows it.
async fn send(
    route: &Route,
    req: Request<RequestBody>,
    path: &PathAndQuery,
    in_task: bool,
    start: Instant,
) -> Result<Response<ResponseBody>, (Failure, Option<Request<RequestBody>>)> {
    let pool = route.pool();
    let backend = route.backend();
    let Some(authority) = backend.authority() else { return Err((Failure::Connect, Some(req))) };
    let (mut parts, mut body) = req.into_parts();
    // Only a body that has bytes to send is followed (for `timeouts.request` / `idle`).
    let progress = body.track();
    let mut tracker = Tracker::begin(route.service.clone(), route.pool, route.backend, start);
    let timeouts = &route.service.timeouts;
    let result = if in_task {
        parts.uri = Uri::from(path.clone());
        let to =
            Target { conns: &pool.conns[route.backend], addr: backend.address(), timeouts, metrics: &pool.metrics };
        match upstream::send(&to, Request::from_parts(parts, body), progress.as_deref()).await {
            Ok((resp, lease)) => Ok((resp, Some(lease))),
            Err(SendError::Connect(e, back)) => Err((Failure::Connect, e.to_string(), Some(back))),
            Err(SendError::Busy) => Err((Failure::Busy, "max_upstream_connections reached".into(), None)),
            Err(SendError::Timeout) => Err((Failure::Timeout, String::new(), None)),
            Err(SendError::Http(e)) => Err((broke(&e), e.to_string(), None)),
        }
    } else {
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(authority.clone());
        uri.path_and_query = Some(path.clone());
        parts.uri = Uri::from_parts(uri).map_err(|_| (Failure::Other, None))?;
        let fut = pool.client.get().request(Request::from_parts(parts, body));
        match exchange::within(fut, progress.as_deref(), timeouts).await {
            Some(Ok(resp)) => Ok((resp, None)),
            Some(Err(e)) if e.is_connect() => Err((Failure::Connect, format!("{e:?}"), None)),
            Some(Err(e)) => Err((broke(&e), format!("{e:?}"), None)),
            None => Err((Failure::Timeout, String::new(), None)),
        }
    };
    let (failure, back) = match result {
        Ok((resp, lease)) => {
            backend.connect_ok();
            let (mut parts, body) = resp.into_parts();
            let upgrade_to = (parts.status == StatusCode::SWITCHING_PROTOCOLS)
                .then(|| parts.headers.get(header::UPGRADE).cloned())
                .flatten();
            headers::strip_hop_by_hop(&mut parts.headers);
            if let Some(u) = upgrade_to {
                upgrade::restore(&mut parts.headers, u);
            }
            tracker.set_status(parts.status.as_u16());
            let body = ResponseBody::upstream(body, tracker, lease, timeouts.idle);
            return Ok(Response::from_parts(parts, body));
        }
        Err((failure, error, back)) => {
            tracing::debug!(%error, ?failure, "upstream attempt failed");
            if matches!(failure, Failure::Connect) {
                backend.connect_failed();
            }
            (failure, back)
        }
    };
    match failure {
        Failure::Connect => pool.metrics.upstream_error("connect"),
        Failure::Timeout => pool.metrics.upstream_error("timeout"),
        Failure::Other => pool.metrics.upstream_error("reset"),
        // Not the backend's failure.
        Failure::Busy | Failure::TooLarge => {}
    }
    Err((failure, back))
}

/// The host a request is for — the URI's authority (HTTP/2, absolute-form) or
/// `Host` — as bytes, without UTF-8 validation (the routing decision's form).
fn request_host_bytes<B>(req: &Request<B>) -> &[u8] {
    match req.uri().authority() {
        Some(a) => headers::authority_host(a.as_str()).as_bytes(),
        None => req.headers().get(header::HOST).map_or(&[], |h| h.as_bytes()),
    }
}
