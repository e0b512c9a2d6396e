//! `demo --traffic RPS`: a built-in load generator, so that a rollout has live
//! traffic to judge. Bounded: at most `MAX_INFLIGHT` requests at a time (a tick
//! with none free is skipped, never queued), and it stops at SIGTERM/SIGINT, when
//! the demo starts its graceful shutdown.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;

/// The most requests the generator keeps in flight.
const MAX_INFLIGHT: usize = 256;
/// Requests go out in batches, one every tick.
const TICK: Duration = Duration::from_millis(10);
/// The highest `--traffic`.
pub const MAX_RPS: u32 = 10_000;

/// `--traffic`: requests per second, 0 (off) to `MAX_RPS`.
pub fn parse_rps(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(r) if r <= MAX_RPS => Ok(r),
        _ => Err(format!("expected requests per second from 0 to {MAX_RPS}, got \"{s}\"")),
    }
}

/// Starts sending `rps` requests per second to `proxy` (nothing when 0).
pub fn spawn(proxy: SocketAddr, rps: u32) {
    if rps == 0 {
        return;
    }
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "demo traffic not started");
            return;
        }
    };
    let target = format!("http://{}/", reachable(proxy));
    tokio::spawn(async move {
        tokio::select! {
            () = generate(target, rps) => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("demo traffic stopped");
    });
    tracing::info!(rps, "demo traffic started");
}

/// Where to connect to a listener bound to `addr` (a wildcard means loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// How many requests the tick numbered `tick` (from 1) sends so that `ticks`
/// ticks send `rps` per second in total, evenly.
fn batch(rps: u32, tick: u64) -> u64 {
    let per_second = 1000 / TICK.as_millis() as u64;
    let due = |t: u64| t * u64::from(rps) / per_second;
    due(tick) - due(tick - 1)
}

async fn generate(target: String, rps: u32) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let slots = Arc::new(Semaphore::new(MAX_INFLIGHT));
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tick: u64 = 0;
    loop {
        ticker.tick().await;
        tick += 1;
        for _ in 0..batch(rps, tick) {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                break;
            };
            let (client, target) = (client.clone(), target.clone());
            tokio::spawn(async move {
                let Ok(req) = http::Request::get(target.as_str()).body(Empty::new()) else {
                    return;
                };
                if let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(30), client.request(req)).await {
                    let _ = resp.into_body().collect().await;
                }
                drop(slot);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_add_up_to_the_rate_every_second() {
        for rps in [1, 7, 100, 150, 10_000] {
            let per_second: u64 = (1..=100).map(|t| batch(rps, t)).sum();
            assert_eq!(per_second, u64::from(rps), "{rps}");
            let max = (1..=100).map(|t| batch(rps, t)).max().unwrap_or(0);
            assert!(max <= u64::from(rps).div_ceil(100), "{rps}: burst of {max}");
        }
    }

    #[test]
    fn rps_is_bounded() {
        assert_eq!(parse_rps("0"), Ok(0));
        assert_eq!(parse_rps("100"), Ok(100));
        assert!(parse_rps("10001").is_err());
        assert!(parse_rps("-1").is_err());
        assert!(parse_rps("lots").is_err());
    }

    #[test]
    fn a_wildcard_listener_is_reached_on_loopback() {
        let at = |s: &str| reachable(s.parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(at("0.0.0.0:8080"), "127.0.0.1:8080".parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(at("[::]:8080"), "[::1]:8080".parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(at("127.0.0.2:80"), "127.0.0.2:80".parse().unwrap_or_else(|e| panic!("{e}")));
    }
}
