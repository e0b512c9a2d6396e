//! `load_reusing` gives what `load` gives, parsing only the services whose text changed.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::Path;
use switchyard_config::{Config, load, load_reusing};

const HEAD: &str = "[listener]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"state.json\"\n";

fn service(i: usize, backend: &str) -> String {
    format!(
        "[[service]]\nname = \"s{i}\"\nhosts = [\"s{i}.test\"]\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{backend}\"]\n[service.pools.green]\nbackends = [\"127.0.0.1:2\"]\n"
    )
}

fn file(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("sy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn three(middle: &str) -> String {
    format!("{HEAD}{}{}{}", service(0, "127.0.0.1:1"), service(1, middle), service(2, "127.0.0.1:1"))
}

#[test]
fn unchanged_services_are_taken_from_the_previous_config_and_the_edit_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), &three("127.0.0.1:1"));
    let mut previous = load(&path).unwrap();
    // Marks what is reused: a parse of s0's text would never give this.
    std::sync::Arc::make_mut(&mut previous.services[0]).min_healthy = 77;
    file(dir.path(), &three("127.0.0.1:9"));
    let reused = load_reusing(&path, &previous).unwrap();
    assert_eq!(reused.services[0].min_healthy, 77, "s0's text did not change: not parsed again");
    assert_eq!(reused.services[1].pools[0].backends, ["127.0.0.1:9"]);
    let mut full = load(&path).unwrap();
    std::sync::Arc::make_mut(&mut full.services[0]).min_healthy = 77;
    assert_eq!(reused, full);
    // And the next reuse knows the new texts.
    let again = load_reusing(&path, &reused).unwrap();
    assert_eq!(again.services[1].pools[0].backends, ["127.0.0.1:9"]);
    assert_eq!(again.services[0].min_healthy, 77);
}

#[test]
fn problems_come_from_the_full_parse_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), &three("127.0.0.1:1"));
    let previous = load(&path).unwrap();
    for broken in [
        three("nope"),
        format!("{}{}", three("127.0.0.1:1"), service(0, "127.0.0.1:1")),
        three("127.0.0.1:1").replace("[listener]", "[listener]\nbogus = 1"),
        three("127.0.0.1:1\"]\nbackends = [\"x"),
    ] {
        file(dir.path(), &broken);
        assert_eq!(load_reusing(&path, &previous).unwrap_err().lines(), load(&path).unwrap_err().lines());
    }
}

#[test]
fn tables_after_the_services_are_never_lost_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let trailing = "[admin]\naddress = \"127.0.0.1:0\"\n[[admin.tokens]]\nname = \"ci\"\nfile = \"ci.token\"\n";
    std::fs::write(dir.path().join("ci.token"), "secret-token-value-ci").unwrap();
    let path = file(dir.path(), &format!("{}{trailing}", three("127.0.0.1:1")));
    let started = load(&path).unwrap();
    assert_eq!(started.admin.tokens.len(), 1);
    // The same file, then an edit of another service: the tokens stay.
    let again = load_reusing(&path, &started).unwrap();
    assert_eq!(again, load(&path).unwrap());
    file(dir.path(), &format!("{}{trailing}", three("127.0.0.1:5")));
    let edited = load_reusing(&path, &again).unwrap();
    assert_eq!(edited, load(&path).unwrap());
    assert_eq!(edited.admin.tokens.len(), 1);
    // A second [admin] after the services: refused, as `load` refuses it.
    file(dir.path(), &format!("[admin]\naddress = \"127.0.0.1:0\"\n{}{trailing}", three("127.0.0.1:5")));
    assert!(load(&path).is_err());
    assert_eq!(load_reusing(&path, &edited).unwrap_err().lines(), load(&path).unwrap_err().lines());
}

#[test]
fn files_the_shortcut_cannot_vouch_for_are_parsed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), &three("127.0.0.1:1"));
    let previous: Config = load(&path).unwrap();
    for text in [
        // A table after the services belongs to the file, not to the last service.
        format!("{}[admin]\naddress = \"127.0.0.1:0\"\n", three("127.0.0.1:1")),
        // Services written as an inline array.
        format!(
            "service = [{{ name = \"s0\", pools = {{ blue = {{ backends = [\"127.0.0.1:1\"] }} }}, traffic = {{ active = \"blue\" }} }}]\n{HEAD}"
        ),
        // Global settings changed, services not.
        three("127.0.0.1:1").replace("[state]", "[runtime]\nshutdown_timeout = \"3s\"\n[state]"),
    ] {
        file(dir.path(), &text);
        assert_eq!(load_reusing(&path, &previous).unwrap(), load(&path).unwrap(), "{text}");
    }
}
