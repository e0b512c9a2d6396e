//! The sampler: once a second, every pool of the current table takes its
//! one-second sample (`PoolStats::sample`), then the tick is published. Tick k is
//! k seconds after the sampler started, on tokio's clock (so a paused clock drives it).

use crate::routes::Router;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// The sampling period: one tick.
pub const TICK: Duration = Duration::from_secs(1);

/// Starts the sampler on the current tokio runtime (panics outside one, like
/// `tokio::spawn`). Tick 0 is sampled at once (a baseline), then one tick per
/// second; the receiver sees each tick after every pool has sampled it. The task
/// ends when the last receiver is dropped.
pub fn spawn_sampler(router: Router) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0);
    let start = Instant::now();
    let mut interval = tokio::time::interval_at(start, TICK);
    // After a stall, sample once for the time that passed rather than in a burst.
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tokio::spawn(async move {
        let mut last = None;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = tx.closed() => break,
            }
            // The whole seconds that really passed (a late tick counts as late).
            let tick = start.elapsed().as_secs();
            if last.is_some_and(|l| tick <= l) {
                continue;
            }
            last = Some(tick);
            sample_all(&router, tick);
            if tx.send(tick).is_err() {
                break;
            }
        }
    });
    rx
}

/// Every pool of the current table samples `tick`. Pools removed by a reload are
/// no longer sampled (nor shown); pools kept across tables keep their rings.
fn sample_all(router: &Router, tick: u64) {
    let table = router.load();
    for service in table.services() {
        for pool in service.pools.iter() {
            pool.stats.sample(tick);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::table::RoutingTable;
    use std::path::Path;

    const CONFIG: &str = "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]\n[service.pools.green]\nbackends = [\"127.0.0.1:2\"]\n";

    #[tokio::test(start_paused = true)]
    async fn samples_every_pool_each_second_on_a_paused_clock_and_stops_without_receivers() {
        let config = switchyard_config::parse(CONFIG, Path::new("t.toml")).unwrap();
        let (_publisher, router) = crate::channel(RoutingTable::build(&config, None, 1));
        let table: std::sync::Arc<RoutingTable> = (*router.load()).clone();
        let svc = table.services().next().unwrap();
        let (blue, green) = (&svc.pools[0].stats, &svc.pools[1].stats);
        let mut ticks = spawn_sampler(router.clone());
        ticks.changed().await.unwrap();
        assert_eq!(*ticks.borrow_and_update(), 0);
        assert_eq!(blue.latest_tick(), None, "a pool that never answered holds no figures to sample");
        blue.record(200, Duration::from_millis(5));
        blue.record(503, Duration::from_millis(1));
        green.record(200, Duration::from_millis(7));
        let before = Instant::now();
        ticks.changed().await.unwrap();
        assert_eq!(*ticks.borrow_and_update(), 1);
        assert_eq!(before.elapsed(), TICK);
        let w = blue.window(0, 1);
        assert_eq!((w.requests, w.errors, w.classes), (2, 1, [0, 1, 0, 0, 1]));
        assert_eq!(green.window(0, 1).requests, 1);
        // Idle seconds: nothing new in the windows, ticks keep coming.
        ticks.wait_for(|t| *t == 5).await.unwrap();
        assert_eq!((blue.latest_tick(), green.latest_tick()), (Some(5), Some(5)));
        assert_eq!(blue.window(1, 5).requests, 0);
        assert_eq!(blue.window(0, 5).requests, 2);
        // No receiver left: the task ends, nothing is sampled any more.
        drop(ticks);
        tokio::time::sleep(TICK * 3).await;
        let stopped_at = blue.latest_tick().unwrap();
        assert!(stopped_at <= 6, "sampled until {stopped_at}");
        tokio::time::sleep(TICK * 3).await;
        assert_eq!(blue.latest_tick(), Some(stopped_at));
    }
}
