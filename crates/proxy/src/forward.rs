//! The request lifecycle: route on one snapshot load, forward, retry a refused
//! connect once on another backend, stream the answer back.

use crate::backend::{Backend, Inflight};
use crate::body::{RequestBody, ResponseBody};
use crate::error::ProxyError;
use crate::headers;
use crate::routes::Router;
use crate::table::{PoolRoute, ServiceRoute};
use http::uri::{PathAndQuery, Scheme};
use http::{Method, Request, Response, Uri, Version, header};
use http_body::Body;
use hyper::body::Incoming;
use std::net::IpAddr;
use std::sync::Arc;

/// What the routing decision picked; owned, so no snapshot guard is held across `.await`.
pub struct Route {
    /// The service (from the snapshot the decision was made on).
    pub service: Arc<ServiceRoute>,
    /// Index of the pool in `service.pools`.
    pub pool: usize,
    /// The backend.
    pub backend: Arc<Backend>,
}

impl Route {
    fn pool(&self) -> &PoolRoute {
        &self.service.pools[self.pool]
    }
}

/// Per-connection request handler.
#[derive(Clone)]
pub struct Proxy {
    router: Router,
    client_ip: IpAddr,
    proto: &'static str,
}

static ROOT: PathAndQuery = PathAndQuery::from_static("/");

impl Proxy {
    /// A handler for requests from `client_ip`; `proto` is `http` or `https`.
    pub fn new(router: Router, client_ip: IpAddr, proto: &'static str) -> Proxy {
        Proxy {
            router,
            client_ip,
            proto,
        }
    }

    /// Routes one request: host → service → pool → backend, on one snapshot load.
    pub fn route<B>(&self, req: &Request<B>) -> Result<Route, ProxyError> {
        let host = request_host(req).unwrap_or("");
        let table = self.router.load();
        let Some(service) = table.route(host) else {
            return Err(ProxyError::NoService {
                host: host.to_owned(),
            });
        };
        let pool = choose_pool(service, req);
        let p = &service.pools[pool];
        match p.pick(None) {
            Some(backend) => Ok(Route {
                service: service.clone(),
                pool,
                backend: backend.clone(),
            }),
            None => Err(ProxyError::NoHealthyBackend {
                service: service.name.clone(),
                pool: p.name.clone(),
            }),
        }
    }

    /// Handles one request end to end; never fails, every failure is a response.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<ResponseBody> {
        if req.method() == Method::CONNECT {
            return ProxyError::MethodNotAllowed.into_response();
        }
        match self.route(&req) {
            Ok(route) => match self.forward(route, req).await {
                Ok(resp) => resp,
                Err(e) => e.into_response(),
            },
            Err(e) => e.into_response(),
        }
    }

    async fn forward(
        &self,
        route: Route,
        req: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let host = request_host(&req).map(str::to_owned);
        let (mut parts, body) = req.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        headers::add_forwarded(
            &mut parts.headers,
            self.client_ip,
            self.proto,
            host.as_deref(),
        );
        parts.version = Version::HTTP_11;
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| ROOT.clone());

        // A second backend can only be tried if the first attempt leaves the request intact.
        let can_retry = route.pool().backends.len() > 1;
        let (first_body, retry_body) = match (can_retry, body.is_end_stream()) {
            (false, _) => (RequestBody::Direct(body), None),
            (true, true) => (RequestBody::Direct(body), Some(RequestBody::Empty)),
            (true, false) => {
                let (a, b) = RequestBody::shared(body);
                (a, Some(b))
            }
        };
        let retry_parts = retry_body.as_ref().map(|_| parts.clone());

        let first = send(&route, parts, &path, first_body).await;
        let (route, result) = match (first, retry_parts, retry_body) {
            (Err(Failure::Connect), Some(parts), Some(body)) => {
                tracing::warn!(service = %route.service.name, pool = %route.pool().name,
                    backend = route.backend.address(), "connect failed; trying another backend");
                match route.pool().pick(Some(&route.backend)) {
                    Some(next) => {
                        let next = Route {
                            service: route.service.clone(),
                            pool: route.pool,
                            backend: next.clone(),
                        };
                        let r = send(&next, parts, &path, body).await;
                        (next, r)
                    }
                    None => (route, Err(Failure::Connect)),
                }
            }
            (first, _, _) => (route, first),
        };
        result.map_err(|f| {
            let (service, pool, backend) = (
                route.service.name.clone(),
                route.pool().name.clone(),
                route.backend.address().into(),
            );
            tracing::warn!(%service, %pool, %backend, failure = ?f, "upstream request failed");
            match f {
                Failure::Connect => ProxyError::Unreachable {
                    service,
                    pool,
                    backend,
                },
                Failure::Timeout => ProxyError::Timeout {
                    service,
                    pool,
                    backend,
                },
                Failure::Other => ProxyError::Upstream {
                    service,
                    pool,
                    backend,
                },
            }
        })
    }
}

#[derive(Debug)]
enum Failure {
    Connect,
    Timeout,
    Other,
}

async fn send(
    route: &Route,
    mut parts: http::request::Parts,
    path: &PathAndQuery,
    body: RequestBody,
) -> Result<Response<ResponseBody>, Failure> {
    let pool = route.pool();
    let authority = route.backend.authority().ok_or(Failure::Connect)?;
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(authority.clone());
    uri.path_and_query = Some(path.clone());
    parts.uri = Uri::from_parts(uri).map_err(|_| Failure::Other)?;
    let inflight = Inflight::start(route.backend.clone(), pool.stats.clone());
    let fut = pool.client.request(Request::from_parts(parts, body));
    match tokio::time::timeout(route.service.timeouts.request, fut).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(e)) if e.is_connect() => Err(Failure::Connect),
        Ok(Err(e)) => {
            tracing::debug!(error = ?e, "upstream error");
            Err(Failure::Other)
        }
        Ok(Ok(resp)) => {
            let (mut parts, body) = resp.into_parts();
            headers::strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(
                parts,
                ResponseBody::Upstream(body, inflight),
            ))
        }
    }
}

/// The host a request is for: the URI's authority (HTTP/2, absolute-form) or `Host`.
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.uri().authority().map(|a| a.as_str()).or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    })
}

/// Override header → weighted draw. (Stickiness plugs in between.)
fn choose_pool<B>(service: &ServiceRoute, req: &Request<B>) -> usize {
    if let Some(name) = &service.override_header {
        let wanted = req.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(i) = wanted.and_then(|w| service.pools.iter().position(|p| &*p.name == w)) {
            return i;
        }
    }
    service.draw_pool()
}
