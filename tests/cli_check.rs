//! `switchyard check` exit codes and message format.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;
use common::BIN;
use std::process::Command;

fn check(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(BIN).arg("check").arg("-c").arg(path).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn valid_config_prints_ok_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path =
        common::write_config(dir.path(), &["127.0.0.1:9001".into()], &["127.0.0.1:9101".into()], "active = \"blue\"");
    assert_eq!(check(&path), (0, "ok\n".into(), String::new()));
}

#[test]
fn invalid_config_prints_every_problem_with_location_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[listener]\naddress = \"127.0.0.1:8080\"\ncolour = 1\n[[service]]\nname = \"shop\"\n[service.traffic]\nactive = \"red\"\n[service.pools.blue]\nbackends = []\n").unwrap();
    let (code, out, err) = check(&path);
    assert_eq!((code, out.as_str()), (1, ""));
    let p = path.display();
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            format!("{p}:3:1: unknown key `colour` in [listener]"),
            format!("{p}:7:10: unknown pool \"red\" (pools: blue)"),
            format!("{p}:9:12: pool \"blue\" has an empty backend list"),
        ]
    );
}

#[test]
fn missing_file_exits_1_naming_it() {
    let (code, _, err) = check(std::path::Path::new("/nonexistent/sy.toml"));
    assert_eq!(code, 1);
    assert!(err.starts_with("/nonexistent/sy.toml: "), "{err}");
}

#[test]
fn usage_error_exits_2() {
    let out = Command::new(BIN).args(["check", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn shipped_example_configs_are_valid() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (code, out, err) = check(&path);
            assert_eq!((code, out.as_str()), (0, "ok\n"), "{}: {err}", path.display());
        }
    }
}
