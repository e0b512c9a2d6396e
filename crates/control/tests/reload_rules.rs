//! Reload and restart rules of SPEC §2/§3: what the file may undo, what it may not,
//! what only a restart changes, and that a reload is all or nothing.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::{fixture, meta};
use switchyard_control::{ControlError, Controller, Kind, ReloadSource, StartError};

#[tokio::test]
async fn editing_pools_never_undoes_a_runtime_cutover() {
    let f = fixture("active = \"blue\"").await;
    f.handle.switch("shop", "green", meta("cutover")).await.unwrap();
    // A backend added to blue.
    let more = f.blue.address().replace("127.0.0.1", "localhost");
    let text = std::fs::read_to_string(&f.path).unwrap();
    let edited =
        text.replacen(&format!("[\"{}\"]", f.blue.address()), &format!("[\"{}\", \"{more}\"]", f.blue.address()), 1);
    assert_ne!(text, edited);
    std::fs::write(&f.path, edited).unwrap();
    f.handle.reload(ReloadSource::Signal).await.unwrap();
    let v = f.handle.service("shop").await.unwrap();
    assert_eq!((v.active.as_deref(), v.version), (Some("green"), 2));
    assert_eq!(v.pools["blue"].backends.len(), 2);
    // A third pool with no weight.
    f.rewrite("active = \"blue\"", &format!("[service.pools.red]\nbackends = [\"{}\"]\n", f.green.address()));
    f.handle.reload(ReloadSource::Watch).await.unwrap();
    let v = f.handle.service("shop").await.unwrap();
    assert_eq!((v.active.as_deref(), v.version), (Some("green"), 2));
    assert!(v.pools.contains_key("red"));
    assert_eq!(f.handle.history("shop").await.unwrap()[0].kind, Kind::Switch);
    // Writing the same table as weights is not a change either.
    f.rewrite("weights = { blue = 100 }", "");
    f.handle.reload(ReloadSource::Admin).await.unwrap();
    assert_eq!(f.handle.service("shop").await.unwrap().active.as_deref(), Some("green"));
}

#[tokio::test]
async fn a_removed_pool_that_runtime_traffic_uses_refuses_the_reload_and_the_restart() {
    let f = fixture("active = \"blue\"").await;
    f.handle.switch("shop", "green", meta("cutover")).await.unwrap();
    let text = std::fs::read_to_string(&f.path).unwrap();
    let without_green = &text[..text.find("[service.pools.green]").unwrap()];
    std::fs::write(&f.path, without_green).unwrap();
    let e = f.handle.reload(ReloadSource::Signal).await.unwrap_err();
    let ControlError::InvalidConfig(problems) = e else { panic!("{e}") };
    assert!(problems[0].contains("pool \"green\""), "{problems:?}");
    let all = f.handle.services().await.unwrap();
    assert_eq!((all.generation, all.services[0].active.as_deref()), (1, Some("green")));
    assert!(!all.last_reload.unwrap().ok);
    let config = switchyard_config::load(&f.path).unwrap();
    let e = Controller::start(config.clone(), false).err().unwrap();
    assert!(matches!(e, StartError::Conflict { .. }), "{e}");
    assert!(e.to_string().contains("--reset-state"), "{e}");
    // Moving traffic off the pool first makes the same file acceptable.
    std::fs::write(&f.path, &text).unwrap();
    f.handle.switch("shop", "blue", meta("back")).await.unwrap();
    std::fs::write(&f.path, without_green).unwrap();
    assert_eq!(f.handle.reload(ReloadSource::Signal).await.unwrap().generation, 2);
    // Rollback cannot return to the removed pool: that step is gone from the stack.
    let e = f.handle.rollback("shop", meta("undo")).await.unwrap_err();
    assert!(matches!(e, ControlError::NothingToRollBack(_)), "{e}");
}

#[tokio::test]
async fn restart_only_settings_are_warned_about_and_keep_their_running_values() {
    let f = fixture("active = \"blue\"").await;
    let text = std::fs::read_to_string(&f.path).unwrap();
    std::fs::write(&f.path, text.replace("address = \"127.0.0.1:0\"", "address = \"127.0.0.1:1\"")).unwrap();
    let report = f.handle.reload(ReloadSource::Admin).await.unwrap();
    assert_eq!(report.generation, 2);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("[listener] address") && report.warnings[0].contains("next restart"));
    assert_eq!(f.handle.config().borrow().listener.address.port(), 0);
}

#[tokio::test]
async fn a_reload_cannot_leave_a_non_loopback_admin_api_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let body = "[state]\nfile = \"state.json\"\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:9\"]\n";
    let with_token = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"0.0.0.0:0\"\ntoken_file = \"token\"\n{body}"
    );
    let path = dir.path().join("sy.toml");
    std::fs::write(&path, &with_token).unwrap();
    let (mut controller, _router) = Controller::start(switchyard_config::load(&path).unwrap(), false).unwrap();
    controller.set_admin("0.0.0.0:9901".parse().unwrap(), false);
    let handle = switchyard_control::spawn(controller);
    // The file also moves the admin API to loopback: that needs a restart, so it does not count.
    std::fs::write(&path, format!("[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n{body}"))
        .unwrap();
    let e = handle.reload(ReloadSource::Signal).await.unwrap_err();
    let ControlError::InvalidConfig(problems) = e else { panic!("{e}") };
    assert!(problems[0].contains("0.0.0.0:9901") && problems[0].contains("token"), "{problems:?}");
    std::fs::write(&path, &with_token).unwrap();
    assert_eq!(handle.reload(ReloadSource::Signal).await.unwrap().generation, 2);
}

#[tokio::test]
async fn a_state_write_that_fails_applies_nothing_of_a_change_or_a_reload() {
    let f = fixture("active = \"blue\"").await;
    let dir = f.path.parent().unwrap().to_owned();
    let key_a = dir.join("key-a");
    std::fs::write(&key_a, "a".repeat(32)).unwrap();
    std::fs::write(dir.join("key-b"), "b".repeat(32)).unwrap();
    let text = std::fs::read_to_string(&f.path).unwrap();
    let with_key = |k: &str| text.replacen("[state]", &format!("[admin]\npreview_key_file = \"{k}\"\n[state]"), 1);
    std::fs::write(&f.path, with_key("key-a")).unwrap();
    f.handle.reload(ReloadSource::Signal).await.unwrap();
    // Neither the state file nor its journal can be written any more.
    let state = dir.join("state.json");
    let snapshot: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let journal = dir.join(format!("state.json.journal-{}", snapshot["seq"]));
    assert!(!journal.exists(), "the reload started an empty journal, created at the first change");
    std::fs::remove_file(&state).unwrap();
    std::fs::create_dir(&state).unwrap();
    std::fs::create_dir(&journal).unwrap();
    let e = f.handle.switch("shop", "green", meta("cutover")).await.unwrap_err();
    assert!(matches!(e, ControlError::Persist(_)), "{e}");
    assert_eq!(f.handle.service("shop").await.unwrap().active.as_deref(), Some("blue"));
    // A reload that changes traffic and brings a new preview key fails at the same
    // step: the traffic and the old key stay in force.
    std::fs::write(&f.path, with_key("key-b").replace("active = \"blue\"", "active = \"green\"")).unwrap();
    let e = f.handle.reload(ReloadSource::Signal).await.unwrap_err();
    assert!(matches!(e, ControlError::Persist(_)), "{e}");
    assert_eq!(f.handle.service("shop").await.unwrap().active.as_deref(), Some("blue"));
    let token = f.handle.preview_token("shop", "green", std::time::Duration::from_secs(60)).await.unwrap().token;
    let table = f.router.load();
    let live = table.preview_key().unwrap();
    assert_eq!(live.verify("shop", token.as_bytes(), switchyard_proxy::preview::now()), Some("green"));
    assert_eq!(f.handle.services().await.unwrap().generation, 2);
}
