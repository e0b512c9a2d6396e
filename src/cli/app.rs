//! `switchyard app`: the demo's tiny fleet member. Answers every request with its
//! name (`blue-1`), and `/healthz` with `ok`. `--fail-rate` and `--latency` make it
//! misbehave on purpose, to watch a rollout roll back; `/healthz` stays healthy so
//! the health gate still lets a rollout start.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// `app` options.
#[derive(clap::Args)]
pub struct AppArgs {
    /// What it answers with, e.g. `blue-1`.
    #[arg(long)]
    pub name: String,
    /// Where it listens.
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
    /// Share of requests (0–1, chosen at random) answered with a 500; never `/healthz`.
    #[arg(long, default_value = "0", value_parser = parse_fail_rate)]
    pub fail_rate: f64,
    /// Wait this long (e.g. `200ms`) before answering every request but `/healthz`.
    #[arg(long, default_value = "0s", value_parser = parse_latency)]
    pub latency: Duration,
    /// Register for discovery in this etcd (e.g. `http://127.0.0.1:2379`; repeat
    /// for several endpoints) under a lease, as `--service`/`--pool`.
    #[arg(long, value_name = "ETCD", requires_all = ["service", "pool"])]
    pub register: Vec<String>,
    /// The service to register under.
    #[arg(long, requires = "register")]
    pub service: Option<String>,
    /// The pool to register under.
    #[arg(long, requires = "register")]
    pub pool: Option<String>,
    /// The cluster's key prefix (`[cluster] prefix`).
    #[arg(long, default_value = "/switchyard", requires = "register")]
    pub prefix: String,
    /// The address proxies should use (default: the address it listens on).
    #[arg(long, requires = "register")]
    pub advertise: Option<String>,
    /// How long the registration outlives the app (its lease).
    #[arg(long, default_value = "5s", value_parser = parse_latency, requires = "register")]
    pub lease_ttl: Duration,
}

/// How an app misbehaves on purpose (the default: not at all).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Misbehave {
    /// Share of requests answered with a 500, 0–1.
    pub fail_rate: f64,
    /// Added before every answer but `/healthz`.
    pub latency: Duration,
}

/// `--fail-rate`: a number from 0 to 1.
pub fn parse_fail_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("expected a share from 0 to 1 (e.g. 0.2), got \"{s}\"")),
    }
}

/// `--latency`: a duration as in the config file.
pub fn parse_latency(s: &str) -> Result<Duration, String> {
    switchyard_config::parse_duration(s)
}

/// Runs one app until killed.
pub fn run(args: AppArgs) -> ExitCode {
    super::init_tracing(false);
    let rt = match super::runtime(Some(1)) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(super::IO_FAILURE);
        }
    };
    let misbehave = Misbehave { fail_rate: args.fail_rate, latency: args.latency };
    rt.block_on(async {
        match TcpListener::bind(args.listen).await {
            Ok(l) => {
                let addr = l.local_addr().unwrap_or(args.listen);
                tracing::info!(name = %args.name, %addr, fail_rate = misbehave.fail_rate, latency = ?misbehave.latency, "app listening");
                let mut registered = None;
                if let (false, Some(service), Some(pool)) = (args.register.is_empty(), &args.service, &args.pool) {
                    registered = Some(switchyard_cluster::keep_registered(switchyard_cluster::Registration {
                        endpoints: args.register.clone(),
                        prefix: args.prefix.clone(),
                        service: service.clone(),
                        pool: pool.clone(),
                        address: args.advertise.clone().unwrap_or_else(|| addr.to_string()),
                        ttl: args.lease_ttl.max(Duration::from_secs(1)),
                    }));
                }
                tokio::select! {
                    () = serve(l, args.name, misbehave) => {}
                    () = stopped() => {
                        // Leaving on purpose: the proxies drop this backend at once.
                        if let Some(r) = registered {
                            r.leave().await;
                        }
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot bind {}: {e}", args.listen);
                ExitCode::from(super::IO_FAILURE)
            }
        }
    })
}

/// SIGTERM or SIGINT.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Serves the app on `listener` forever.
pub async fn serve(listener: TcpListener, name: String, misbehave: Misbehave) {
    let body = Bytes::from(format!("{name}\n"));
    let failure = Bytes::from(format!("{name}: injected failure (--fail-rate {})\n", misbehave.fail_rate));
    let answers = Arc::new((body, failure));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let answers = answers.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let answers = answers.clone();
                async move { Ok::<_, Infallible>(answer(req.uri().path(), &answers, misbehave).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn answer(path: &str, (body, failure): &(Bytes, Bytes), misbehave: Misbehave) -> Response<Full<Bytes>> {
    if path == "/healthz" {
        return Response::new(Full::new(Bytes::from_static(b"ok\n")));
    }
    if !misbehave.latency.is_zero() {
        tokio::time::sleep(misbehave.latency).await;
    }
    if misbehave.fail_rate > 0.0 && unit_random() < misbehave.fail_rate {
        let mut resp = Response::new(Full::new(failure.clone()));
        *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return resp;
    }
    Response::new(Full::new(body.clone()))
}

/// A number in [0, 1) from a per-thread splitmix64 (randomly seeded): good
/// enough to pick which demo requests fail.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()));
    }
    STATE.with(|s| {
        let next = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits, as a fraction of 2^53.
        (z >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_rate_must_be_a_share() {
        assert_eq!(parse_fail_rate("0"), Ok(0.0));
        assert_eq!(parse_fail_rate("0.25"), Ok(0.25));
        assert_eq!(parse_fail_rate("1"), Ok(1.0));
        for bad in ["-0.1", "1.01", "NaN", "inf", "half", ""] {
            assert!(parse_fail_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unit_random_stays_in_range_and_spreads() {
        let draws: Vec<f64> = (0..10_000).map(|_| unit_random()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let low = draws.iter().filter(|d| **d < 0.2).count();
        // 2,000 expected; ±500 is more than 12 standard deviations.
        assert!((1500..2500).contains(&low), "{low}");
    }
}
