//! The proxy's worker threads. Each runs its own current-thread tokio runtime and
//! accepts from the same listening socket(s) (duplicated descriptors), so a client
//! connection, its requests and their upstream connections stay on one thread:
//! nginx's worker model. One work-stealing runtime woke idle workers to steal on
//! almost every request, and those spinning threads took CPU from the requests.

use super::signals::Stop;
use std::future::Future;
use std::time::Duration;
use switchyard_proxy::{Router, ServerOptions, tls::TlsSettings};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The listening sockets every worker accepts from.
pub struct Listeners {
    /// Plain HTTP/1.1 and h2c.
    pub plain: std::net::TcpListener,
    /// TLS, with the certificate settings the control path swaps on reload.
    pub tls: Option<(std::net::TcpListener, TlsSettings)>,
}

/// Starts `n` workers serving until `stop`; the returned future resolves once every
/// worker has finished its in-flight requests (or died).
pub fn start(
    n: usize,
    listeners: &Listeners,
    router: &Router,
    opts: &ServerOptions,
    stop: &Stop,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut done = Vec::with_capacity(n);
    for i in 0..n {
        let plain = listeners.plain.try_clone()?;
        let tls = match &listeners.tls {
            Some((l, settings)) => Some((l.try_clone()?, settings.clone())),
            None => None,
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (router, opts) = (router.clone(), opts.clone());
        let (stop_plain, stop_tls) = (stop.wait(), stop.wait());
        let (finished, rx) = oneshot::channel::<()>();
        std::thread::Builder::new().name(format!("switchyard-w{i}")).spawn(move || {
            rt.spawn(keep_a_timer_due());
            rt.block_on(async move {
                let tls_task = async {
                    let Some((l, settings)) = tls else { return };
                    match TcpListener::from_std(l) {
                        Ok(l) => switchyard_proxy::serve_tls(l, router.clone(), opts.clone(), settings, stop_tls).await,
                        Err(e) => tracing::error!(error = %e, worker = i, "cannot use the TLS listener"),
                    }
                };
                let plain_task = async {
                    match TcpListener::from_std(plain) {
                        Ok(l) => switchyard_proxy::serve(l, router.clone(), opts.clone(), stop_plain).await,
                        Err(e) => tracing::error!(error = %e, worker = i, "cannot use the proxy listener"),
                    }
                };
                tokio::join!(plain_task, tls_task);
            });
            let _ = finished.send(());
        })?;
        done.push(rx);
    }
    Ok(async move {
        for rx in done {
            let _ = rx.await;
        }
    })
}

/// Keeps a timer due within `TIMER_TICK` on a worker's runtime. Tokio wakes its
/// own timer driver (an eventfd write, then one more epoll round) whenever a timer
/// is set earlier than the driver's next wake-up, or while the driver has none.
/// Under load a connection's wait for its next request rarely sets a timer (the
/// request is there already), so the driver often had none, and each wait that did
/// set one (its idle deadline, 500 ms or more ahead) paid that wake-up: 0.05 extra
/// syscalls per request at 64 busy connections. With this timer always nearer,
/// they never do; it costs four wake-ups a second.
async fn keep_a_timer_due() {
    let mut every = tokio::time::interval(TIMER_TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
    }
}

/// Shorter than any deadline a connection sets between requests (`PARK_AFTER`).
const TIMER_TICK: Duration = Duration::from_millis(250);

/// Workers for `worker_threads`: as configured, else one per core.
pub fn count(configured: Option<usize>) -> usize {
    configured.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}
