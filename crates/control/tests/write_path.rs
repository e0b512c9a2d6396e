//! The control path end to end in process: commands through the handle, a real
//! proxy reading the same snapshot, the state file on disk.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::{config_text, fixture, meta, weights};
use switchyard_config::Traffic;
use switchyard_control::{ChangeMeta, ControlError, Controller, Kind, ReloadSource, spawn};
use switchyard_proxy::{Router, ServerOptions};
use switchyard_test_support::Conn;
use tokio::net::TcpListener;

async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ServerOptions {
        proto: "http",
        access_log: switchyard_proxy::AccessLog::off(),
        header_timeout: std::time::Duration::from_secs(5),
        idle_timeout: std::time::Duration::from_secs(60),
        max_header_bytes: 65536,
        max_request_body: 0,
        connections: std::sync::Arc::new(tokio::sync::Semaphore::new(1024)),
    };
    tokio::spawn(switchyard_proxy::serve(listener, router, opts, std::future::pending()));
    addr
}

#[tokio::test]
async fn switch_answered_means_next_request_on_open_connection_is_green() {
    let f = fixture("active = \"blue\"").await;
    let addr = serve(f.router.clone()).await;
    let mut c = Conn::open(addr).await;
    assert_eq!(c.get("x", "/").await.1, "blue");
    let v = f.handle.switch("shop", "green", meta("cutover")).await.unwrap();
    assert_eq!((v.version, v.active.as_deref()), (2, Some("green")));
    // No sleep: the answer comes after the table is live.
    assert_eq!(c.get("x", "/").await.1, "green");
    assert_eq!((f.blue.hits(), f.green.hits()), (1, 1));
}

#[tokio::test]
async fn three_changes_then_three_rollbacks_return_to_start_and_a_fourth_is_refused() {
    let f = fixture("active = \"blue\"").await;
    let start = f.handle.service("shop").await.unwrap().traffic;
    f.handle.set_weights("shop", weights(90, 10), meta("canary")).await.unwrap();
    f.handle.set_weights("shop", weights(50, 50), meta("half")).await.unwrap();
    f.handle.switch("shop", "green", meta("cutover")).await.unwrap();
    let back = f.handle.rollback("shop", meta("oops")).await.unwrap();
    assert_eq!(back.traffic, Traffic(weights(50, 50)));
    assert_eq!(back.active, None);
    assert_eq!(f.handle.rollback("shop", meta("")).await.unwrap().traffic, Traffic(weights(90, 10)));
    let last = f.handle.rollback("shop", meta("")).await.unwrap();
    assert_eq!(last.traffic, start);
    assert_eq!(last.version, 7);
    assert!(matches!(f.handle.rollback("shop", meta("")).await, Err(ControlError::NothingToRollBack(_))));
    let history = f.handle.history("shop").await.unwrap();
    assert_eq!(history.len(), 6);
    assert_eq!(history[0].kind, Kind::Rollback);
    assert_eq!(history[5].reason, "canary");
    assert_eq!(history[5].actor, "api");
}

/// The versions concurrent changes were answered with, in order.
async fn sorted_versions(tasks: Vec<tokio::task::JoinHandle<u64>>) -> Vec<u64> {
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.sort_unstable();
    versions
}

#[tokio::test]
async fn concurrent_changes_get_consecutive_versions_and_no_lost_update() {
    let f = fixture("active = \"blue\"").await;
    let mut tasks = Vec::new();
    for i in 0..50u32 {
        let h = f.handle.clone();
        tasks.push(tokio::spawn(async move {
            // Every call changes traffic: alternating distinct splits.
            h.set_weights("shop", weights(i + 1, 99 - i), meta(&format!("c{i}"))).await.unwrap().version
        }));
    }
    let versions = sorted_versions(tasks).await;
    assert_eq!(versions, (2..=51).collect::<Vec<u64>>());
    let history = f.handle.history("shop").await.unwrap();
    assert_eq!(history.len(), 50);
    assert!(history.windows(2).all(|w| w[0].version == w[1].version + 1));
}

/// `inline()` (the binary's admin API): changes applied on the callers' threads,
/// while the control thread applies reloads and other callers' changes. One lock
/// orders them all: consecutive versions, nothing lost, the file as the memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_applied_on_the_callers_threads_and_by_the_control_thread_are_one_sequence() {
    let f = fixture("active = \"blue\"").await;
    let inline = f.handle.clone().inline();
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let h = if i % 2 == 0 { inline.clone() } else { f.handle.clone() };
        tasks.push(tokio::spawn(async move {
            if i % 10 == 5 {
                // A reload of the unchanged file goes through the mailbox meanwhile.
                h.reload(ReloadSource::Admin).await.unwrap();
            }
            h.set_weights("shop", weights(i + 1, 99 - i), meta(&format!("c{i}"))).await.unwrap().version
        }));
    }
    let versions = sorted_versions(tasks).await;
    assert_eq!(versions, (2..=41).collect::<Vec<u64>>());
    let history = inline.history("shop").await.unwrap();
    assert!(history.windows(2).all(|w| w[0].version == w[1].version + 1));
    let last = inline.switch("shop", "green", meta("cutover")).await.unwrap();
    assert_eq!((last.version, last.active.as_deref()), (42, Some("green")));
    let live = f.router.load().service("shop").unwrap().pool("green").unwrap().weight;
    assert_eq!(live, switchyard_config::Weight::FULL, "published");
    // What a restart reads back is what was answered.
    drop((inline, f.handle));
    let config = switchyard_config::load(&f.path).unwrap();
    let (restarted, _) = Controller::start(config, false).unwrap();
    let back = spawn(restarted).service("shop").await.unwrap();
    assert_eq!((back.version, back.traffic), (42, last.traffic));
}

#[tokio::test]
async fn stale_if_match_is_refused_and_changes_nothing() {
    let f = fixture("active = \"blue\"").await;
    f.handle.switch("shop", "green", meta("")).await.unwrap();
    let stale = ChangeMeta { if_match: Some(1), ..meta("") };
    let e = f.handle.switch("shop", "blue", stale).await.unwrap_err();
    assert!(matches!(e, ControlError::VersionMismatch { expected: 1, actual: 2, .. }), "{e}");
    let v = f.handle.service("shop").await.unwrap();
    assert_eq!((v.version, v.active.as_deref()), (2, Some("green")));
    let fresh = ChangeMeta { if_match: Some(2), ..meta("") };
    assert_eq!(f.handle.switch("shop", "blue", fresh).await.unwrap().version, 3);
}

#[tokio::test]
async fn switch_to_the_live_pool_changes_nothing() {
    let f = fixture("active = \"blue\"").await;
    let v = f.handle.switch("shop", "blue", meta("")).await.unwrap();
    assert_eq!(v.version, 1);
    assert!(f.handle.history("shop").await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_service_pool_and_bad_weights_are_refused() {
    let f = fixture("active = \"blue\"").await;
    assert!(matches!(f.handle.switch("nope", "green", meta("")).await, Err(ControlError::UnknownService(_))));
    assert!(matches!(f.handle.switch("shop", "red", meta("")).await, Err(ControlError::UnknownPool { .. })));
    let e = f.handle.set_weights("shop", weights(50, 40), meta("")).await.unwrap_err();
    assert_eq!(e.to_string(), "weights add up to 90, not 100");
}

#[tokio::test]
async fn gate_refuses_a_pool_without_healthy_backends_unless_forced() {
    let f = fixture("active = \"blue\"").await;
    for b in f.router.load().service("shop").unwrap().pool("green").unwrap().backends.iter() {
        b.set_healthy(false);
    }
    let e = f.handle.switch("shop", "green", meta("")).await.unwrap_err();
    assert!(matches!(e, ControlError::Gate { healthy: 0, min: 1, .. }), "{e}");
    assert!(e.to_string().contains("pool \"green\""), "{e}");
    assert_eq!(f.handle.service("shop").await.unwrap().version, 1);
    let forced = ChangeMeta { force: true, ..meta("hotfix") };
    assert_eq!(f.handle.switch("shop", "green", forced).await.unwrap().active.as_deref(), Some("green"));
    assert!(f.handle.history("shop").await.unwrap()[0].forced);
}

#[tokio::test]
async fn runtime_switch_survives_reload_of_unchanged_file_but_a_changed_file_wins() {
    let f = fixture("active = \"blue\"").await;
    f.handle.switch("shop", "green", meta("")).await.unwrap();
    assert_eq!(f.handle.reload(ReloadSource::Admin).await.unwrap().generation, 2);
    assert_eq!(f.handle.service("shop").await.unwrap().active.as_deref(), Some("green"));
    let dir = f.path.parent().unwrap();
    std::fs::write(&f.path, config_text(dir, &f.blue, &f.green, "weights = { blue = 75, green = 25 }")).unwrap();
    assert_eq!(f.handle.reload(ReloadSource::Signal).await.unwrap().generation, 3);
    let v = f.handle.service("shop").await.unwrap();
    assert_eq!(v.traffic, Traffic(weights(75, 25)));
    let h = &f.handle.history("shop").await.unwrap()[0];
    assert_eq!((h.kind, h.actor.as_str()), (Kind::Config, "config"));
}

#[tokio::test]
async fn invalid_reload_keeps_the_old_config_and_reports_every_problem() {
    let f = fixture("active = \"blue\"").await;
    std::fs::write(&f.path, "[listener]\naddress = \"nope\"\n[[service]]\nname = \"shop\"\n").unwrap();
    let e = f.handle.reload(ReloadSource::Signal).await.unwrap_err();
    let ControlError::InvalidConfig(problems) = e else { panic!("{e}") };
    assert!(problems.len() >= 2, "{problems:?}");
    let all = f.handle.services().await.unwrap();
    assert_eq!(all.generation, 1);
    assert!(!all.last_reload.unwrap().ok);
    assert_eq!(all.services[0].active.as_deref(), Some("blue"));
}

#[tokio::test]
async fn state_survives_restart_and_corrupt_state_refuses_to_start() {
    let f = fixture("active = \"blue\"").await;
    f.handle.switch("shop", "green", meta("cutover")).await.unwrap();
    let config = switchyard_config::load(&f.path).unwrap();
    let (restarted, _router) = Controller::start(config.clone(), false).unwrap();
    let h = spawn(restarted);
    let v = h.service("shop").await.unwrap();
    assert_eq!((v.version, v.active.as_deref()), (2, Some("green")));
    assert_eq!(h.history("shop").await.unwrap()[0].reason, "cutover");
    std::fs::write(&config.state.file, "{garbage").unwrap();
    let e = Controller::start(config.clone(), false).err().unwrap().to_string();
    assert!(e.contains(&config.state.file.display().to_string()), "{e}");
    assert!(Controller::start(config, true).is_ok());
}
