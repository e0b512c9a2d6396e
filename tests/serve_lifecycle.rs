//! The real binary: serving, SIGTERM with a request in flight, SIGHUP reloads,
//! restarts with the state file, refusing to start.

#![allow(clippy::unwrap_used, unsafe_code)] // test helpers fail loudly by design; kill(2) by pid

mod common;
use common::{Sy, ctl, http as plain_http, write_config};
use http::StatusCode;
use switchyard_test_support::{Conn, Upstream};

async fn fleets() -> (Upstream, Upstream) {
    (Upstream::spawn("blue").await, Upstream::spawn("green").await)
}

async fn status(sy: &Sy) -> serde_json::Value {
    let (code, out, err) = tokio::task::block_in_place(|| ctl(&sy.admin_url(), &["--json", "status"]));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = fleets().await;
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let mut sy = Sy::start(&cfg, &[]);
    let mut c = Conn::open(sy.proxy).await;
    assert_eq!(c.get("x", "/").await.1, "blue");
    let pending = tokio::spawn(async move { c.get("x", "/hold").await });
    assert_eq!(b.arrived().await, "/hold");
    sy.signal(libc::SIGTERM);
    sy.wait_log("shutting down");
    b.release(1);
    assert_eq!(pending.await.unwrap(), (StatusCode::OK, "blue".into()));
    assert_eq!(tokio::task::block_in_place(|| sy.wait_exit()).code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_an_edited_file_and_keeps_the_old_one_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = fleets().await;
    let b2 = Upstream::spawn("blue-new").await;
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let sy = Sy::start(&cfg, &[]);
    write_config(dir.path(), &[b2.address()], &[g.address()], "active = \"blue\"");
    sy.signal(libc::SIGHUP);
    sy.wait_log("reload applied");
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "blue-new");

    std::fs::write(&cfg, "[listener]\naddress = 5\n").unwrap();
    sy.signal(libc::SIGHUP);
    sy.wait_log("reload failed");
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "blue-new");
    let s = status(&sy).await;
    assert_eq!(s["generation"], 2);
    assert_eq!(s["last_reload"]["ok"], false);
    let problems = s["last_reload"]["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p.as_str().unwrap().contains("`address` must be a string")), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_switch_stands_over_an_unchanged_file_and_a_changed_traffic_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = fleets().await;
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let sy = Sy::start(&cfg, &[]);
    let admin = sy.admin_url();
    assert_eq!(tokio::task::block_in_place(|| ctl(&admin, &["switch", "shop", "green"])).0, 0);
    sy.signal(libc::SIGHUP);
    sy.wait_log("reload applied");
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "green");

    // The file now says something new: it wins over the runtime switch.
    write_config(dir.path(), &[b.address()], &[g.address()], "weights = { blue = 50, green = 50 }");
    sy.signal(libc::SIGHUP);
    sy.wait_log("reload applied");
    assert_eq!(status(&sy).await["services"][0]["traffic"], serde_json::json!({"blue": 50, "green": 50}));
    write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    sy.signal(libc::SIGHUP);
    sy.wait_log("reload applied");
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "blue");
    let (_, out, _) = tokio::task::block_in_place(|| ctl(&admin, &["--json", "history", "shop"]));
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((h["events"][0]["kind"].as_str(), h["events"][0]["actor"].as_str()), (Some("config"), Some("config")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_survives_kill_9_and_a_corrupt_state_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = fleets().await;
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let mut sy = Sy::start(&cfg, &[]);
    let admin = sy.admin_url();
    let (code, _, err) =
        tokio::task::block_in_place(|| ctl(&admin, &["switch", "shop", "green", "--reason", "release 42"]));
    assert_eq!(code, 0, "{err}");
    sy.signal(libc::SIGKILL);
    tokio::task::block_in_place(|| sy.wait_exit());
    drop(sy);

    let sy = Sy::start(&cfg, &[]);
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "green");
    let (_, out, _) = tokio::task::block_in_place(|| ctl(&sy.admin_url(), &["--json", "history", "shop"]));
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h["events"][0]["reason"], "release 42");
    drop(sy);

    let state = dir.path().join("state/sy.json");
    std::fs::write(&state, "{\"services\": 12").unwrap();
    let Err((status, log)) = Sy::try_start(&cfg, &[]) else { panic!("started on a corrupt state file") };
    assert_eq!(status.code(), Some(1));
    assert!(log.contains(&state.display().to_string()) && log.contains("corrupt"), "{log}");
    let sy = Sy::start(&cfg, &["--reset-state"]);
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "blue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_exposed_admin_without_token_and_exits_3_when_port_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["127.0.0.1:9".into()], &["127.0.0.1:9".into()], "active = \"blue\"");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("[admin]\naddress = \"127.0.0.1:0\"", "[admin]\naddress = \"0.0.0.0:0\""))
        .unwrap();
    let Err((status, log)) = Sy::try_start(&cfg, &[]) else { panic!("started exposed") };
    assert_eq!(status.code(), Some(1));
    assert!(log.contains("without a token"), "{log}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap();
    std::fs::write(
        &cfg,
        text.replace("[listener]\naddress = \"127.0.0.1:0\"", &format!("[listener]\naddress = \"{port}\"")),
    )
    .unwrap();
    let Err((status, log)) = Sy::try_start(&cfg, &[]) else { panic!("started on a taken port") };
    assert_eq!(status.code(), Some(3));
    assert!(log.contains("cannot bind the proxy listener"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reloads_a_file_replaced_by_rename() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = fleets().await;
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let sy = Sy::start(&cfg, &["--watch"]);
    write_config(dir.path(), &[b.address()], &[g.address()], "active = \"green\"");
    sy.wait_log("reload applied");
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "green");
}

/// A Kubernetes ConfigMap volume: `sy.toml -> ..data/sy.toml`, `..data -> ..TIMESTAMP`;
/// an update writes a new timestamped folder and swaps `..data` by rename. The file
/// itself is never written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_a_configmap_symlink_swap() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = fleets().await;
    let version = |name: &str, traffic: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        let written = write_config(&d, &[b.address()], &[g.address()], traffic);
        // State beside the ConfigMap, as a writable volume would be.
        let text = std::fs::read_to_string(&written).unwrap();
        let state = dir.path().join("state.json");
        std::fs::write(&written, text.replace("state/sy.json", &state.display().to_string())).unwrap();
    };
    version("..2026_01", "active = \"blue\"");
    std::os::unix::fs::symlink("..2026_01", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/sy.toml", dir.path().join("sy.toml")).unwrap();
    let sy = Sy::start(&dir.path().join("sy.toml"), &["--watch"]);
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "blue");
    version("..2026_02", "active = \"green\"");
    std::os::unix::fs::symlink("..2026_02", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    sy.wait_log("reload applied");
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "green");
    // The next swap is seen too (the watch follows the new target folder).
    version("..2026_03", "active = \"blue\"");
    std::os::unix::fs::symlink("..2026_03", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    sy.wait_log("reload applied");
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "blue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_reload_prints_the_restart_only_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = fleets().await;
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let sy = Sy::start(&cfg, &[]);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("[listener]\naddress = \"127.0.0.1:0\"", "[listener]\naddress = \"127.0.0.1:1\""),
    )
    .unwrap();
    let (code, out, err) = tokio::task::block_in_place(|| ctl(&sy.admin_url(), &["reload"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("reloaded: generation 2"), "{out}");
    assert!(out.contains("warning: [listener] address changed") && out.contains("next restart"), "{out}");
    assert!(!out.contains("[admin] address"), "the admin API was bound to the port the file asked for: {out}");
    // Still serving on the address it was started with.
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, "blue");
}

/// The state file is a FIFO, so start-up blocks reading it until the test writes
/// it: a SIGTERM sent in that window must lead to a graceful stop (exit 0), not
/// kill the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_during_start_up_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = fleets().await;
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let fifo = dir.path().join("state/sy.json");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut child = std::process::Command::new(common::BIN)
        .args(["serve", "-c"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Opening the FIFO for writing returns once switchyard has opened it to read.
    let path = fifo.clone();
    let mut writer = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).open(path).unwrap()),
    )
    .await
    .expect("switchyard never read its state file")
    .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    std::io::Write::write_all(&mut writer, br#"{"format":1,"services":{}}"#).unwrap();
    drop(writer);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_log_pipe_stops_neither_switches_nor_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (b, g) = fleets().await;
    let cfg = write_config(dir.path(), &[b.address()], &[g.address()], "active = \"blue\"");
    let sy = Sy::start(&cfg, &[]);
    sy.stall_log();
    // Each switch logs a line of ~200 bytes: a process that writes its log
    // synchronously blocks in write(2) after ~300 (a 64 KiB pipe); 2000 are more
    // than the pipe and the proxy's queue of 1024 lines together.
    let admin = sy.admin;
    let last = tokio::task::spawn_blocking(move || {
        let mut last = String::new();
        for i in 0..2000 {
            let pool = if i % 2 == 0 { "green" } else { "blue" };
            let body = format!("{{\"pool\": \"{pool}\"}}");
            let (status, text) = plain_http::request(admin, "POST", "/v1/services/shop/switch", &[], &body)
                .unwrap_or_else(|| panic!("switch {i} got no answer"));
            assert_eq!(status, 200, "switch {i}: {text}");
            last = pool.to_owned();
        }
        last
    })
    .await
    .unwrap();
    assert_eq!(Conn::open(sy.proxy).await.get("x", "/").await.1, last, "traffic flows with the log stuck");
    // Once stderr is read again, the loss is said, not hidden.
    sy.resume_log();
    sy.wait_log("log lines dropped: stderr was not being read");
}
