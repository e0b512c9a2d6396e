//! Warming a pool before it takes traffic. A switch, weight change or rollback
//! that gives a pool more weight first opens HTTP/1 connections to it on every
//! runtime that serves requests, as many as the share of traffic it gains will
//! need, so the first requests after the publish find them idle. A cold pool would
//! otherwise see every busy client connection dial it in the same millisecond,
//! and traffic dips while they do (`benches/switch_dip.py`). The control thread
//! starts the warming, persists the change meanwhile, and waits a bounded time
//! before it publishes; dials still going on then finish on their own.

use crate::h1::upstream::Raw;
use crate::idle::IdleConns;
use crate::service_route::{PoolRoute, ServiceRoute};
use crate::upstream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use switchyard_config::Weight;
use tokio::runtime::{Handle, Id};

/// Most connections opened per pool and runtime by one warming.
const MAX_PER_RUNTIME: usize = 64;

/// The runtimes serving requests now (each worker's, each test's), so that a
/// connection is opened on the runtime whose requests will use it (`idle.rs`).
#[derive(Default)]
pub(crate) struct Runtimes {
    list: Mutex<Vec<(Id, Handle, usize)>>,
}

/// Keeps the current runtime listed while it serves; dropped when serving ends.
pub(crate) struct Serving {
    runtimes: Arc<Runtimes>,
    id: Id,
}

impl Runtimes {
    /// Lists the current runtime (a listener serving on it).
    pub(crate) fn enter(self: &Arc<Self>) -> Serving {
        let handle = Handle::current();
        let id = handle.id();
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        match list.iter_mut().find(|(i, ..)| *i == id) {
            Some((.., n)) => *n += 1,
            None => list.push((id, handle, 1)),
        }
        Serving { runtimes: self.clone(), id }
    }

    fn handles(&self) -> Vec<(Id, Handle)> {
        let list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        list.iter().map(|(id, h, _)| (*id, h.clone())).collect()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let mut list = self.runtimes.list.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = list.iter().position(|(i, ..)| *i == self.id) {
            list[at].2 -= 1;
            if list[at].2 == 0 {
                list.swap_remove(at);
            }
        }
    }
}

/// Connections being opened; `wait` for them before publishing.
#[must_use = "publish after `wait`, or the warmed pool may still be cold"]
pub struct Warming {
    state: Arc<Progress>,
}

#[derive(Default)]
struct Progress {
    total: usize,
    left: Mutex<usize>,
    done: Condvar,
    opened: AtomicUsize,
}

impl Progress {
    fn finished(&self, opened: bool) {
        if opened {
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.done.notify_all();
        }
    }
}

impl Warming {
    /// Nothing to open.
    pub(crate) fn none() -> Warming {
        Warming { state: Arc::default() }
    }

    /// Blocks until every connection is open (or failed), at most `at_most`;
    /// returns how many opened by then, of how many. Never call it on the
    /// thread of a runtime that serves requests (the dials run there).
    pub fn wait(&self, at_most: Duration) -> (usize, usize) {
        let until = Instant::now() + at_most;
        let mut left = self.state.left.lock().unwrap_or_else(PoisonError::into_inner);
        while *left > 0 {
            let now = Instant::now();
            if now >= until {
                break;
            }
            left = self.state.done.wait_timeout(left, until - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        drop(left);
        (self.state.opened.load(Ordering::Relaxed), self.state.total)
    }
}

/// Opens connections to the pools of `next` that gain weight over `now`, on every
/// runtime in `runtimes`: per runtime, the pool's new share of the connections the
/// service has open there (idle, plus its requests in flight split evenly), less
/// those it has idle there already.
pub(crate) fn start(runtimes: &Runtimes, now: &ServiceRoute, next: &ServiceRoute) -> Warming {
    let handles = runtimes.handles();
    if handles.is_empty() {
        return Warming::none();
    }
    let inflight: u64 = now.pools.iter().flat_map(|p| p.backends.iter()).map(|b| b.inflight()).sum();
    let inflight_each = usize::try_from(inflight).unwrap_or(usize::MAX).div_ceil(handles.len());
    // The kind of connection client HTTP/1 requests take (HTTP/2 clients' are not warmed).
    let raw = crate::server::h1_path();
    let mut plan: Vec<(Handle, Vec<Dial>)> = handles.iter().map(|(_, h)| (h.clone(), Vec::new())).collect();
    for pool in next.pools.iter().filter(|p| !p.is_h2c()) {
        let was = now.pool(&pool.name).map_or(Weight::ZERO, |p| p.weight);
        if pool.weight <= was {
            continue;
        }
        let healthy: Vec<usize> = (0..pool.backends.len()).filter(|&i| pool.backends[i].is_healthy()).collect();
        if healthy.is_empty() {
            continue;
        }
        for ((id, _), (_, dials)) in handles.iter().zip(plan.iter_mut()) {
            // Its share of what the service has open there, less what it has idle.
            let open = inflight_each.saturating_add(now.pools.iter().map(|p| idle_on(p, *id, raw)).sum::<usize>());
            let share = open.saturating_mul(pool.weight.0 as usize).div_ceil(Weight::FULL.0 as usize);
            for k in 0..share.saturating_sub(idle_on(pool, *id, raw)).min(MAX_PER_RUNTIME) {
                let at = healthy[k % healthy.len()];
                dials.push(Dial { conns: pool.conns[at].clone(), addr: pool.backends[at].address().into(), raw });
            }
        }
    }
    let total = plan.iter().map(|(_, d)| d.len()).sum();
    let state = Arc::new(Progress { total, left: Mutex::new(total), ..Progress::default() });
    let connect = next.timeouts.connect;
    // One task sent to each runtime (one wake-up), which starts its dials there.
    for (handle, dials) in plan.into_iter().filter(|(_, d)| !d.is_empty()) {
        let state = state.clone();
        handle.spawn(async move {
            for dial in dials {
                let state = state.clone();
                tokio::spawn(async move { state.finished(dial.open(connect).await) });
            }
        });
    }
    Warming { state }
}

/// One connection to open.
struct Dial {
    conns: Arc<IdleConns>,
    addr: Box<str>,
    /// For the HTTP/1 path (else hyper's client).
    raw: bool,
}

impl Dial {
    /// Opens it (within the pool's cap) and leaves it idle; whether it opened.
    async fn open(self, connect: Duration) -> bool {
        let Ok(slot) = self.conns.limit().reserve() else { return false };
        if !self.raw {
            let Ok(lease) = upstream::connect(&self.addr, connect, slot).await else { return false };
            self.conns.put(lease);
            return true;
        }
        match upstream::dial(&self.addr, connect).await {
            Ok(stream) => {
                self.conns.put_raw(Raw::new(stream, slot));
                true
            }
            Err(_) => false,
        }
    }
}

/// Idle connections of `pool` of the kind `raw` says that runtime `id` can use.
fn idle_on(pool: &PoolRoute, id: Id, raw: bool) -> usize {
    pool.conns.iter().map(|c| c.idle_on(id, raw)).sum()
}
