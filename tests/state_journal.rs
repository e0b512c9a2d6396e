//! The state journal on the real binary: kill -9 in the middle of a storm of
//! changes loses nothing acknowledged and leaves nothing corrupt; a torn journal
//! tail is cut with a log line; damage before the end refuses the start.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use common::Sy;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

const SERVICES: usize = 12;

fn write_config(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"state/sy.json\"\n",
    );
    for i in 0..SERVICES {
        text.push_str(&format!(
            "[[service]]\nname = \"s{i}\"\nhosts = [\"s{i}.test\"]\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:9\"]\n[service.pools.green]\nbackends = [\"127.0.0.1:9\"]\n"
        ));
    }
    let path = dir.join("sy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One request over a kept-alive connection; `None` once the connection fails.
fn exchange(conn: &mut BufReader<TcpStream>, method: &str, path: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(head.as_bytes()).ok()?;
    let mut line = String::new();
    conn.read_line(&mut line).ok()?;
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0;
    loop {
        line.clear();
        conn.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            len = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    conn.read_exact(&mut body).ok()?;
    Some((status, serde_json::from_slice(&body).ok()?))
}

fn connect(admin: SocketAddr) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(admin).unwrap())
}

/// What an acknowledged switch said: service, the version it produced, the pool.
type Ack = (usize, u64, &'static str);

/// Four clients switch random services until killed; returns every acknowledged change.
fn storm(sy: &mut Sy, until_acks: usize) -> Vec<Ack> {
    let acks = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (acks, stop, admin) = (acks.clone(), stop.clone(), sy.admin);
            std::thread::spawn(move || {
                let mut conn = connect(admin);
                let mut n: u64 = c;
                while !stop.load(Relaxed) {
                    n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let svc = (n >> 33) as usize % SERVICES;
                    let pool = if (n >> 20) & 1 == 0 { "blue" } else { "green" };
                    let body = format!("{{\"pool\":\"{pool}\",\"reason\":\"storm\"}}");
                    match exchange(&mut conn, "POST", &format!("/v1/services/s{svc}/switch"), &body) {
                        Some((200, v)) => acks.lock().unwrap().push((svc, v["version"].as_u64().unwrap(), pool)),
                        Some((status, v)) => panic!("switch answered {status}: {v}"),
                        None => break,
                    }
                }
            })
        })
        .collect();
    while acks.lock().unwrap().len() < until_acks {
        std::thread::yield_now();
    }
    // Killed while the clients are still sending: some changes are in flight.
    sy.signal(libc::SIGKILL);
    sy.wait_exit();
    stop.store(true, Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    Arc::try_unwrap(acks).unwrap().into_inner().unwrap()
}

#[test]
fn kill_9_during_a_storm_of_changes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    // Snapshots every few changes, so kills also land in the middle of one.
    let env = [("SWITCHYARD_JOURNAL_COMPACT_BYTES", "3000")];
    let mut all: Vec<Ack> = Vec::new();
    for round in 0..3 {
        let mut sy =
            Sy::try_start_env(&cfg, &[], &env).unwrap_or_else(|(s, log)| panic!("round {round}: {s:?}\n{log}"));
        let mut conn = connect(sy.admin);
        for (svc, version, pool) in &all {
            if *version == 1 {
                // A switch to where traffic already was: no change, no event.
                assert_eq!(*pool, "blue");
                continue;
            }
            let (status, history) = exchange(&mut conn, "GET", &format!("/v1/services/s{svc}/history"), "").unwrap();
            assert_eq!(status, 200);
            let event = history["events"].as_array().unwrap().iter().find(|e| e["version"] == *version);
            let event = event.unwrap_or_else(|| panic!("round {round}: s{svc} lost acknowledged version {version}"));
            assert_eq!(event["to"][*pool], 100, "s{svc} v{version}: {event}");
        }
        for svc in 0..SERVICES {
            let (_, v) = exchange(&mut conn, "GET", &format!("/v1/services/s{svc}"), "").unwrap();
            let newest = all.iter().filter(|a| a.0 == svc).map(|a| a.1).max().unwrap_or(1);
            assert!(v["version"].as_u64().unwrap() >= newest, "s{svc}: {v}");
        }
        drop(conn);
        all.extend(storm(&mut sy, 120));
    }
    assert!(all.len() >= 360);
}

#[test]
fn a_torn_journal_tail_is_cut_and_damage_before_the_end_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let switch_three = |sy: &Sy| {
        let mut conn = connect(sy.admin);
        for pool in ["green", "blue", "green"] {
            let body = format!("{{\"pool\":\"{pool}\"}}");
            assert_eq!(exchange(&mut conn, "POST", "/v1/services/s1/switch", &body).unwrap().0, 200);
        }
    };
    let journal = || {
        let state = dir.path().join("state");
        let mut found = std::fs::read_dir(&state).unwrap().map(|e| e.unwrap().path());
        found.find(|p| p.to_string_lossy().contains("sy.json.journal-")).unwrap()
    };
    let mut sy = Sy::start(&cfg, &[]);
    switch_three(&sy);
    sy.signal(libc::SIGKILL);
    sy.wait_exit();
    // A crash in the middle of an append: half a line at the end.
    let j = journal();
    let text = std::fs::read_to_string(&j).unwrap();
    let last = text.lines().last().unwrap().to_owned();
    std::fs::write(&j, format!("{text}{}", &last[..last.len() / 2])).unwrap();
    let mut sy = Sy::start(&cfg, &[]);
    let cut = sy.startup_log.lines().find(|l| l.contains("state journal")).unwrap_or_default();
    assert!(cut.contains("line 4 is incomplete") && cut.contains(&j.display().to_string()), "{cut}");
    let (_, v) = exchange(&mut connect(sy.admin), "GET", "/v1/services/s1", "").unwrap();
    assert_eq!((v["version"].as_u64(), v["active"].as_str()), (Some(4), Some("green")), "{v}");
    switch_three(&sy);
    sy.signal(libc::SIGKILL);
    sy.wait_exit();
    // Damage in the middle is not a crash: the start refuses and names the file.
    let j = journal();
    let text = std::fs::read_to_string(&j).unwrap();
    std::fs::write(&j, text.replacen("\"green\"", "\"gr33n\"", 1)).unwrap();
    let Err((status, log)) = Sy::try_start(&cfg, &[]) else { panic!("started on a damaged journal") };
    assert_eq!(status.code(), Some(1));
    assert!(log.contains(&j.display().to_string()) && log.contains("line 1 is damaged"), "{log}");
    let sy = Sy::start(&cfg, &["--reset-state"]);
    let (_, v) = exchange(&mut connect(sy.admin), "GET", "/v1/services/s1", "").unwrap();
    assert_eq!(v["version"].as_u64(), Some(1), "{v}");
}

#[test]
fn a_second_switchyard_on_the_same_state_file_refuses_to_start_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let mut first = Sy::start(&cfg, &[]);
    let mut conn = connect(first.admin);
    assert_eq!(exchange(&mut conn, "POST", "/v1/services/s2/switch", "{\"pool\":\"green\"}").unwrap().0, 200);
    let Err((status, log)) = Sy::try_start(&cfg, &[]) else { panic!("a second instance started on the same state") };
    assert_eq!(status.code(), Some(3));
    assert!(log.contains("is in use by another switchyard"), "{log}");
    // The first one goes on, and everything it acknowledged survives its kill -9.
    assert_eq!(exchange(&mut conn, "POST", "/v1/services/s3/switch", "{\"pool\":\"green\"}").unwrap().0, 200);
    first.signal(libc::SIGKILL);
    first.wait_exit();
    let sy = Sy::start(&cfg, &[]);
    let mut conn = connect(sy.admin);
    for svc in ["s2", "s3"] {
        let (_, v) = exchange(&mut conn, "GET", &format!("/v1/services/{svc}"), "").unwrap();
        assert_eq!((v["version"].as_u64(), v["active"].as_str()), (Some(2), Some("green")), "{svc}: {v}");
    }
}
