//! The commit order: written, published, synced, answered.

use super::*;
use crate::command::Command;
use std::sync::Mutex;
use switchyard_test_support::Upstream;

fn green_weight(router: &Router) -> u32 {
    router.load().service("shop").and_then(|s| s.pool("green")).map_or(0, |p| p.weight.0)
}

async fn controller(dir: &std::path::Path) -> (Controller, Router, Upstream, Upstream) {
    let (blue, green) = (Upstream::spawn("blue").await, Upstream::spawn("green").await);
    let path = dir.join("sy.toml");
    let text = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"{}\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n[service.pools.green]\nbackends = [\"{}\"]\n",
        dir.join("state.json").display(),
        blue.address(),
        green.address()
    );
    std::fs::write(&path, text).unwrap();
    let (c, router) = Controller::start(switchyard_config::load(&path).unwrap(), false).unwrap();
    (c, router, blue, green)
}

fn switch(pool: &str) -> Command {
    Command::Switch { service: "shop".into(), pool: pool.into(), meta: ChangeMeta::default() }
}

#[tokio::test]
async fn a_change_is_published_before_its_sync_and_taken_back_when_the_sync_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, router, _blue, _green) = controller(dir.path()).await;
    // What the workers route to while the record is being synced.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (r, s) = (router.clone(), seen.clone());
    c.store.sync_fault = Some(Box::new(move || {
        s.lock().unwrap().push(green_weight(&r));
        Err(std::io::Error::other("EIO"))
    }));
    let e = c.apply(switch("green")).unwrap_err();
    assert!(matches!(e, ControlError::Persist(ref m) if m.contains("EIO")), "{e}");
    assert_eq!(*seen.lock().unwrap(), [10_000], "the sync ran after the table was published");
    assert_eq!(green_weight(&router), 0, "the traffic is taken back");
    assert_eq!(c.state.services["shop"].version, 1);
    // The journal holds nothing of it: a restart comes back on blue.
    let (_, on_disk) = Store::open(&dir.path().join("state.json")).unwrap();
    assert_eq!(on_disk.services["shop"].traffic, c.state.services["shop"].traffic);
    // Tried again while syncs still fail (a rollout retrying its rollback every
    // tick): synced first, so the traffic does not flap.
    let e = c.apply(switch("green")).unwrap_err();
    assert!(matches!(e, ControlError::Persist(_)), "{e}");
    assert_eq!(*seen.lock().unwrap(), [10_000, 0], "after a failed sync, the next one comes before the publish");
    assert_eq!(green_weight(&router), 0);
    // Once syncs work again, the same change goes through (synced first once more),
    // and the one after it is published before its sync again.
    let (r, s) = (router.clone(), seen.clone());
    c.store.sync_fault = Some(Box::new(move || {
        s.lock().unwrap().push(green_weight(&r));
        Ok(())
    }));
    c.apply(switch("green")).unwrap();
    assert_eq!((green_weight(&router), c.state.services["shop"].version), (10_000, 2));
    c.apply(switch("blue")).unwrap();
    assert_eq!(*seen.lock().unwrap(), [10_000, 0, 0, 0]);
}

/// What `f` logs, as text.
fn logged(f: impl FnOnce()) -> String {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || Sink(sink.clone())).finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = buf.lock().unwrap().clone();
    String::from_utf8(text).unwrap()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn traffic_changed_is_logged_after_the_change_is_applied_and_never_for_one_that_was_not() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _router, _blue, _green) = controller(dir.path()).await;
    c.store.sync_fault = Some(Box::new(|| Err(std::io::Error::other("EIO"))));
    let log = logged(|| {
        c.apply(switch("green")).unwrap_err();
        c.log_applied();
    });
    assert!(!log.contains("traffic changed"), "a change taken back is not logged as made: {log}");
    c.store.sync_fault = None;
    let log = logged(|| {
        c.apply(switch("green")).unwrap();
        // The control thread logs once the caller has its answer, not before the publish.
        assert!(!c.unlogged.is_empty());
    });
    assert!(!log.contains("traffic changed"), "{log}");
    let log = logged(|| c.log_applied());
    assert!(log.contains("traffic changed") && log.contains("service=\"shop\""), "{log}");
    assert!(log.contains("kind=\"switch\"") && log.contains("version=2"), "{log}");
    assert_eq!(log.matches("traffic changed").count(), 1, "{log}");
    assert!(logged(|| c.log_applied()).is_empty(), "each change is logged once");
}

/// A change applied on a caller's thread (`inline`) that panics half-way (here
/// after the publish, before the state is updated) leaves the controller unsure:
/// every call after it is refused, on both paths, rather than served from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_change_panicked_on_a_callers_thread_every_call_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _router, _blue, _green) = controller(dir.path()).await;
    // Once: a later change would go through.
    let mut armed = true;
    c.store.sync_fault = Some(Box::new(move || {
        assert!(!std::mem::take(&mut armed), "a bug half-way through a change");
        Ok(())
    }));
    let handle = crate::spawn(c);
    let inline = handle.clone().inline();
    let h = inline.clone();
    let panicked = tokio::spawn(async move { h.switch("shop", "green", ChangeMeta::default()).await }).await;
    assert!(panicked.unwrap_err().is_panic());
    let next = inline.switch("shop", "green", ChangeMeta::default()).await;
    assert!(matches!(next, Err(ControlError::Unavailable)), "{next:?}");
    let read = handle.services().await;
    assert!(matches!(read, Err(ControlError::Unavailable)), "{:?}", read.map(|_| ()));
    let queued = handle.switch("shop", "blue", ChangeMeta::default()).await;
    assert!(matches!(queued, Err(ControlError::Unavailable)), "{queued:?}");
}
