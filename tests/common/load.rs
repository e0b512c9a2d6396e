//! Load from the test: keep-alive clients through the proxy until stopped,
//! answers counted by pool (the body names it) and status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use switchyard_test_support::Conn;

/// Requests through the proxy until stopped: answers by pool and status.
#[derive(Default)]
pub struct Tally {
    pub blue_ok: AtomicU64,
    pub blue_failed: AtomicU64,
    pub green_ok: AtomicU64,
    pub green_failed: AtomicU64,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `clients` keep-alive clients, each pausing `gap` between requests.
    pub fn start(proxy: SocketAddr, clients: usize, gap: std::time::Duration) -> Load {
        let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
        let tasks = (0..clients)
            .map(|_| {
                let (stop, tally) = (stop.clone(), tally.clone());
                tokio::spawn(async move {
                    let mut conn = Conn::open(proxy).await;
                    // Bounded: at most 10 minutes of requests.
                    for _ in 0..600_000 {
                        if stop.load(Relaxed) {
                            break;
                        }
                        let (status, body) = conn.get("shop", "/").await;
                        let counter = match (body.contains("blue"), status.is_success()) {
                            (true, true) => &tally.blue_ok,
                            (true, false) => &tally.blue_failed,
                            (false, true) => &tally.green_ok,
                            (false, false) => &tally.green_failed,
                        };
                        counter.fetch_add(1, Relaxed);
                        if !conn.is_open() {
                            conn = Conn::open(proxy).await;
                        }
                        tokio::time::sleep(gap).await;
                    }
                })
            })
            .collect();
        Load { stop, tally, tasks }
    }

    pub async fn stop(self) -> Arc<Tally> {
        self.stop.store(true, Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.tally
    }
}
