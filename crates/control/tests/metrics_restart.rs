//! A restart does not replay history into counters, and the last-change time is
//! the latest event's, not the start time. (Own test binary: it installs the
//! process-wide metrics recorder.)

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::{fixture, meta};
use switchyard_control::{Controller, spawn};

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)).and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn restart_counts_nothing_again_and_keeps_the_last_change_time() {
    let metrics = switchyard_metrics::install().unwrap();
    let f = fixture("active = \"blue\"").await;
    f.handle.switch("shop", "green", meta("one")).await.unwrap();
    f.handle.switch("shop", "blue", meta("two")).await.unwrap();
    let changes = "switchyard_traffic_changes_total{service=\"shop\",kind=\"switch\"}";
    assert_eq!(sample(&metrics.render(), changes), Some(2.0));
    // The events happened long ago, as far as the restarted process can tell.
    drop(f.handle);
    let config = switchyard_config::load(&f.path).unwrap();
    // A start folds the journal into the state file; edit that.
    drop(Controller::start(config.clone(), false).unwrap());
    let text = std::fs::read_to_string(&config.state.file).unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&text).unwrap();
    for e in state["services"]["shop"]["history"].as_array_mut().unwrap() {
        e["at"] = "2020-01-01T00:00:00Z".into();
    }
    std::fs::write(&config.state.file, serde_json::to_vec(&state).unwrap()).unwrap();
    let (restarted, _router) = Controller::start(config, false).unwrap();
    let h = spawn(restarted);
    assert_eq!(h.service("shop").await.unwrap().version, 3);
    let text = metrics.render();
    assert_eq!(sample(&text, changes), Some(2.0), "{text}");
    assert_eq!(sample(&text, "switchyard_last_change_timestamp_seconds{service=\"shop\"}"), Some(1_577_836_800.0));
}
