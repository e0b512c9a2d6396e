//! The dashboard (SPEC §10) in a real browser: headless Chromium driven over
//! the DevTools protocol against the real binary and real upstream apps.
//! Without Chromium these tests say so and skip, except under CI (`CI` set),
//! where a missing browser is a failure.

#![allow(clippy::unwrap_used)]

mod common;

use common::{App, Sy, ctl};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use switchyard_test_support::cdp::{Browser, Page, chromium};

const OP: &str = "op-secret";
const VIEW: &str = "view-secret";
/// Long enough for two polls (1.5 s each) on a busy machine.
const POLL: Duration = Duration::from_secs(4);
/// For the first render: Chromium's start on a loaded machine.
const READY: Duration = Duration::from_secs(30);

/// One browser test at a time: each runs Chromium and a proxy, on two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running proxy with real apps, and a browser tab on its dashboard.
struct Dash {
    sy: Sy,
    apps: Vec<App>,
    page: Page,
    _browser: Browser,
    dir: tempfile::TempDir,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// How the proxy is set up.
#[derive(Default)]
struct Setup {
    tokens: bool,
    health: bool,
    services: usize,
    /// Cluster mode with this etcd endpoint.
    etcd: Option<String>,
}

fn config(dir: &Path, apps: &[App], s: &Setup) -> std::path::PathBuf {
    let mut text = String::from("[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n");
    if s.tokens {
        std::fs::write(dir.join("op-token"), OP).unwrap();
        std::fs::write(dir.join("view-token"), VIEW).unwrap();
        text +=
            "token_file = \"op-token\"\n[[admin.tokens]]\nname = \"dash\"\nfile = \"view-token\"\nrole = \"viewer\"\n";
    }
    text += "[state]\nfile = \"state/sy.json\"\n";
    if let Some(url) = &s.etcd {
        text += &format!("[cluster]\netcd = [\"{url}\"]\nname = \"dash-a\"\nlease_ttl = \"2s\"\n");
    }
    let q = |a: &App| format!("\"{}\"", a.addr);
    for i in 0..s.services.max(1) {
        let name = if i == 0 { "shop".to_owned() } else { format!("svc-{i:02}") };
        text += &format!(
            "[[service]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\n[service.traffic]\nactive = \"blue\"\n\
             [service.pools.blue]\nbackends = [{}, {}]\n[service.pools.green]\nbackends = [{}, {}]\n",
            q(&apps[0]),
            q(&apps[1]),
            q(&apps[2]),
            q(&apps[3])
        );
        if s.health {
            text += "[service.health]\npath = \"/healthz\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\n\
                     healthy_threshold = 1\nunhealthy_threshold = 1\n";
        }
    }
    let path = dir.join("sy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The apps and the proxy in front of them.
fn start(setup: &Setup) -> (Sy, Vec<App>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let apps: Vec<App> = ["blue-1", "blue-2", "green-1", "green-2"].iter().map(|n| App::start(n, &[])).collect();
    let sy = Sy::start(&config(dir.path(), &apps, setup), &[]);
    (sy, apps, dir)
}

/// Starts everything and opens `/ui`; `None` when Chromium is absent outside CI.
fn open(setup: Setup) -> Option<Dash> {
    let Some(binary) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "Chromium is required under CI (apt-get install chromium)");
        // Straight to stderr: the harness captures eprintln! of a passing test.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: no Chromium on PATH (install Debian's chromium or set SWITCHYARD_CHROMIUM)\n",
        );
        return None;
    };
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (sy, apps, dir) = start(&setup);
    let browser = Browser::launch(&binary).unwrap();
    let mut page = browser.page().unwrap();
    page.goto(&format!("{}/ui", sy.admin_url())).unwrap();
    Some(Dash { sy, apps, page, _browser: browser, dir, _turn: turn })
}

impl Dash {
    fn wait(&mut self, predicate: &str) -> Value {
        self.page.wait_for(predicate, POLL).unwrap()
    }

    /// Waits for the first full render (traffic, figures, history) of `shop`.
    fn ready(&mut self) {
        self.page
            .wait_for(
                "document.body.dataset.rendered === '1' && \
                 document.querySelectorAll('[data-service=shop] [data-backend]').length === 4",
                READY,
            )
            .unwrap();
    }

    /// How many times the page has read `/v1/services` (one per poll).
    fn polls(&mut self) -> usize {
        self.page.requests().unwrap().iter().filter(|u| u.ends_with("/v1/services")).count()
    }

    fn eval(&mut self, expression: &str) -> Value {
        self.page.eval(expression).unwrap()
    }

    fn text(&mut self, selector: &str) -> String {
        let v = self.eval(&format!("document.querySelector({}).textContent", json!(selector)));
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Types `token` into the sign-in form and waits for the first render.
    fn sign_in(&mut self, token: &str) {
        self.page.wait_for("!document.getElementById('login').hidden", READY).unwrap();
        self.eval(&format!(
            "document.getElementById('token').value = {}; document.getElementById('login').requestSubmit()",
            json!(token)
        ));
    }

    /// Clicks the button `data-action=action` of `shop` and waits for its
    /// dialog; answers the dialog's from and to.
    fn open_dialog(&mut self, action: &str) -> (String, String) {
        self.eval(&format!("document.querySelector('[data-service=shop] [data-action=\"{action}\"]').click()"));
        self.wait("document.getElementById('dialog').open");
        (self.text("#dialog-from"), self.text("#dialog-to"))
    }

    /// Types `reason` into the open dialog and applies.
    fn apply(&mut self, reason: &str) {
        self.eval(&format!(
            "document.getElementById('dialog-reason').value = {}; document.getElementById('dialog-form').requestSubmit()",
            json!(reason)
        ));
    }

    /// Opens the dialog of `action`, fills in the reason and applies.
    fn act(&mut self, action: &str, reason: &str) {
        self.open_dialog(action);
        self.apply(reason);
    }

    /// Browser errors, except failed loads with the given statuses (a 401
    /// before sign-in, a refusal the test provokes).
    fn errors_except(&mut self, statuses: &[u16]) -> Vec<String> {
        let errors = self.page.errors().unwrap();
        errors.into_iter().filter(|e| !statuses.iter().any(|s| e.contains(&format!("status of {s}")))).collect()
    }

    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["--token", OP];
        all.extend_from_slice(args);
        ctl(&self.sy.admin_url(), &all)
    }
}

#[test]
fn the_page_shows_both_pools_follows_a_switch_and_asks_nothing_of_other_origins() {
    let Some(mut d) = open(Setup::default()) else { return };
    d.ready();
    for (i, app) in d.apps.iter().enumerate() {
        let pool = if i < 2 { "blue" } else { "green" };
        let sel = format!("[data-service=shop] [data-pool={pool}] [data-backend=\"{}\"]", app.addr);
        let found = d.page.eval(&format!("!!document.querySelector({})", json!(sel))).unwrap();
        assert_eq!(found, json!(true), "backend {} of {pool} not shown", app.addr);
    }
    assert_eq!(d.text("[data-service=shop] [data-pool=blue] td:nth-child(2)"), "2/2");
    assert_eq!(d.text("[data-service=shop] .mode"), "active: blue");
    assert_eq!(d.text("#whoami"), "no token needed · operator");

    let before = d.polls();
    let (code, _, err) = d.ctl(&["switch", "shop", "green", "--reason", "made by the API"]);
    assert_eq!(code, 0, "{err}");
    d.wait("document.querySelector('[data-service=shop] .mode').textContent === 'active: green'");
    // Within one poll: the read under way may have started before the switch; the next one shows it.
    let polls = d.polls() - before;
    assert!(polls <= 2, "the switch took {polls} polls to show");
    d.wait("document.querySelector('[data-service=shop] .history tbody tr .reason').textContent === 'made by the API'");

    let origin = d.sy.admin_url();
    let foreign: Vec<String> = d
        .page
        .requests()
        .unwrap()
        .into_iter()
        .filter(|u| !u.starts_with(&format!("{origin}/")) && !u.starts_with("data:"))
        .collect();
    assert!(foreign.is_empty(), "requests outside {origin}: {foreign:?}");
    let errors = d.errors_except(&[]);
    assert!(errors.is_empty(), "browser errors: {errors:?}");
}

#[test]
fn rollback_from_the_page_needs_a_reason_and_shows_it_as_text() {
    let Some(mut d) = open(Setup { tokens: true, ..Setup::default() }) else { return };
    d.sign_in(OP);
    d.ready();
    assert_eq!(d.text("#whoami"), "api · operator");
    let (code, _, err) = d.ctl(&["switch", "shop", "green", "--reason", "cutover"]);
    assert_eq!(code, 0, "{err}");
    d.wait("document.querySelector('[data-service=shop] .mode').textContent === 'active: green'");
    // The history has loaded for this version, so the dialog can say where a rollback goes.
    d.wait("document.querySelector('[data-service=shop] .history tbody tr .reason').textContent === 'cutover'");

    let from_to = d.open_dialog("rollback");
    assert_eq!(from_to, ("blue 0% · green 100%".into(), "blue 100% · green 0%".into()));
    // No reason: the form does not submit (nothing sent, Apply still enabled, the field says why).
    d.eval("document.getElementById('dialog-form').requestSubmit()");
    let state = d.eval(
        "[document.getElementById('dialog').open, document.getElementById('dialog-ok').disabled, \
          document.getElementById('dialog-reason').validity.valueMissing]",
    );
    assert_eq!(state, json!([true, false, true]));
    assert!(
        d.page.requests().unwrap().iter().all(|u| !u.ends_with("/rollback")),
        "a rollback was sent without a reason"
    );
    let reason = "<img src=x onerror=alert(1)> green is slow";
    d.apply(reason);
    d.wait("!document.getElementById('dialog').open");
    d.wait("document.querySelector('[data-service=shop] .mode').textContent === 'active: blue'");
    let row = d.wait(
        "(() => { const r = document.querySelector('[data-service=shop] .history tbody tr'); \
         return r && r.children[2].textContent === 'rollback' && [r.children[4].textContent, r.children[5].textContent]; })()",
    );
    assert_eq!(row, json!(["api", reason]), "the history row shows the actor and the reason literally");
    assert_eq!(d.eval("document.querySelectorAll('img').length"), json!(0), "the reason was parsed as HTML");

    let (code, out, _) = d.ctl(&["--json", "history", "shop"]);
    assert_eq!(code, 0);
    let latest = &serde_json::from_str::<Value>(&out).unwrap()["events"][0];
    assert_eq!((latest["kind"].as_str(), latest["reason"].as_str()), (Some("rollback"), Some(reason)));
    assert!(d.page.requests().unwrap().iter().all(|u| !u.ends_with("/x")), "the page loaded the injected image");
    let errors = d.errors_except(&[401]);
    assert!(errors.is_empty(), "browser errors: {errors:?}");
}

#[test]
fn a_wrong_token_is_asked_again_and_a_viewer_sees_every_button_disabled() {
    let Some(mut d) = open(Setup { tokens: true, ..Setup::default() }) else { return };
    d.sign_in("tökén");
    d.wait("document.getElementById('login-message').textContent.startsWith('A token is visible ASCII')");
    d.sign_in("not-a-token");
    d.wait("document.getElementById('login-message').textContent.startsWith('That token was refused')");
    assert_eq!(d.eval("document.getElementById('login').hidden"), json!(false));
    assert_eq!(d.eval("sessionStorage.getItem('switchyard.token')"), Value::Null, "a refused token is not kept");

    d.sign_in(VIEW);
    d.ready();
    assert_eq!(d.text("#whoami"), "dash · viewer");
    let buttons = d.eval(
        "[...document.querySelectorAll('[data-service=shop] [data-action]')].map(b => [b.dataset.action, b.disabled])",
    );
    let buttons = buttons.as_array().unwrap();
    assert!(buttons.len() >= 4, "{buttons:?}");
    assert!(buttons.iter().all(|b| b[1] == json!(true)), "a viewer can press {buttons:?}");
    // A reload of the tab keeps the token (sessionStorage) and asks nothing.
    let url = format!("{}/ui", d.sy.admin_url());
    d.page.goto(&url).unwrap();
    d.ready();
    assert_eq!(d.text("#whoami"), "dash · viewer");
    let errors = d.errors_except(&[401]);
    assert!(errors.is_empty(), "browser errors: {errors:?}");
}

#[test]
fn a_killed_backend_turns_red() {
    let Some(mut d) = open(Setup { health: true, ..Setup::default() }) else { return };
    d.ready();
    let victim = d.apps.remove(3); // green-2
    let addr = victim.addr;
    drop(victim);
    let sel = json!(format!("[data-service=shop] [data-backend=\"{addr}\"]"));
    d.wait(&format!("document.querySelector({sel}).classList.contains('down')"));
    let colour =
        d.eval(&format!("getComputedStyle(document.querySelector({sel}).querySelector('.dot')).backgroundColor"));
    let rgb: Vec<u32> = colour
        .as_str()
        .unwrap()
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    assert!(rgb[0] > 150 && rgb[1] < 110 && rgb[2] < 110, "not red: {colour}");
    assert_eq!(d.text("[data-service=shop] [data-pool=green] td:nth-child(2)"), "1/2");
    assert_eq!(d.text(&format!("[data-service=shop] [data-backend=\"{addr}\"] .state")), "down");

    // The whole of green down: a switch to it is refused by the gate, in the server's words.
    drop(d.apps.remove(2)); // green-1
    d.wait("document.querySelector('[data-service=shop] [data-pool=green] td:nth-child(2)').textContent === '0/2'");
    d.act("switch:green", "try anyway");
    let message = d
        .wait("!document.getElementById('dialog-error').hidden && document.getElementById('dialog-error').textContent");
    let message = message.as_str().unwrap();
    assert!(message.starts_with("409: ") && message.contains("green"), "{message}");
    assert!(message.ends_with("(tick force to override the health gate)"), "{message}");
    assert_eq!(d.text("[data-service=shop] .mode"), "active: blue");
}

#[test]
fn a_change_made_elsewhere_meanwhile_shows_the_servers_412() {
    let Some(mut d) = open(Setup::default()) else { return };
    d.ready();
    d.open_dialog("switch:green");
    let (code, _, err) = d.ctl(&["weights", "shop", "blue=50", "green=50", "--reason", "someone else"]);
    assert_eq!(code, 0, "{err}");
    d.apply("go green");
    let message = d
        .wait("!document.getElementById('dialog-error').hidden && document.getElementById('dialog-error').textContent");
    let message = message.as_str().unwrap();
    assert!(message.starts_with("412: ") && message.contains("shop changed meanwhile (now v2)"), "{message}");
    assert_eq!(d.eval("document.getElementById('dialog').open"), json!(true), "the dialog stays open on a refusal");
    let (_, out, _) = d.ctl(&["--json", "status", "shop"]);
    assert!(out.contains("\"green\": 50"), "the stale switch was applied: {out}");
    // The dialog now shows the traffic as it is, and a second Apply sends the new version.
    assert_eq!(d.text("#dialog-from"), "blue 50% · green 50%");
    d.eval("document.getElementById('dialog-form').requestSubmit()");
    d.wait("!document.getElementById('dialog').open");
    let (_, out, _) = d.ctl(&["--json", "status", "shop"]);
    assert!(out.contains("\"active\": \"green\""), "{out}");
}

#[test]
fn a_rollout_shows_its_ladder_and_can_be_paused_from_the_page() {
    let Some(mut d) = open(Setup::default()) else { return };
    d.ready();
    let (code, _, err) = d.ctl(&["weights", "shop", "blue=90", "green=10", "--reason", "by hand"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        d.ctl(&["rollout", "start", "shop", "green", "--steps", "20,50,100", "--step-interval", "10m"]);
    assert_eq!(code, 0, "{err}");
    d.wait("!!document.querySelector('[data-service=shop] .rollout-panel')");
    let ladder = d.eval(
        "[...document.querySelectorAll('[data-service=shop] .ladder li')].map(l => l.textContent + ' ' + l.className)",
    );
    assert_eq!(ladder, json!(["20% step current", "50% step todo", "100% step todo"]));
    assert!(d.text("[data-service=shop] .countdown").starts_with("next step in "));
    d.act("rollout-pause", "looking at the logs");
    d.wait("document.querySelector('[data-service=shop] .rollout-panel .phase').textContent === 'paused'");
    d.wait("!!document.querySelector('[data-service=shop] [data-action=rollout-resume]')");
    d.act("rollout-abort", "not today");
    d.wait("!document.querySelector('[data-service=shop] .rollout-panel') && document.querySelector('[data-service=shop] .mode').textContent === 'split'");
    // An aborted rollout is no change to roll back: the dialog names what the server will do.
    let from_to = d.open_dialog("rollback");
    assert_eq!(from_to, ("blue 90% · green 10%".into(), "blue 100% · green 0%".into()));
    d.apply("undo the canary");
    d.wait("!document.getElementById('dialog').open && document.querySelector('[data-service=shop] .mode').textContent === 'active: blue'");
    let errors = d.errors_except(&[]);
    assert!(errors.is_empty(), "browser errors: {errors:?}");
}

#[test]
fn a_failed_reload_is_shown_until_one_succeeds() {
    let Some(mut d) = open(Setup::default()) else { return };
    d.ready();
    assert_eq!(d.eval("document.getElementById('reload').hidden"), json!(true));
    let path = d.dir.path().join("sy.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("bogus = 1\n{good}")).unwrap();
    let (code, _, err) = d.ctl(&["reload"]);
    assert_eq!(code, 1, "{err}");
    let text = d.wait("!document.getElementById('reload').hidden && document.getElementById('reload').textContent");
    let text = text.as_str().unwrap();
    assert!(
        text.contains("failed; the previous config is still in force") && text.contains("unknown key `bogus`"),
        "{text}"
    );
    std::fs::write(&path, good).unwrap();
    let (code, _, err) = d.ctl(&["reload"]);
    assert_eq!(code, 0, "{err}");
    d.wait("document.getElementById('reload').hidden && document.getElementById('generation').textContent === 'config generation 2'");
}

#[test]
fn readable_at_360_px_and_dark_when_the_system_is() {
    let Some(mut d) = open(Setup::default()) else { return };
    d.ready();
    let metrics = json!({ "width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": true });
    d.page.call("Emulation.setDeviceMetricsOverride", metrics).unwrap();
    let width = d.eval("document.documentElement.scrollWidth");
    assert!(width.as_u64().unwrap() <= 360, "the page scrolls sideways at 360 px: {width}");
    let dark = json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] });
    d.page.call("Emulation.setEmulatedMedia", dark).unwrap();
    let bg = d.eval("getComputedStyle(document.body).backgroundColor");
    assert_eq!(bg, json!("rgb(17, 20, 24)"));
}

#[test]
fn the_keyboard_reaches_a_button_opens_its_dialog_and_escape_closes_it() {
    let Some(mut d) = open(Setup::default()) else { return };
    d.ready();
    let key = |d: &mut Dash, key: &str, code: u32| {
        for kind in ["keyDown", "keyUp"] {
            let text = if key == "Enter" && kind == "keyDown" { "\r" } else { "" };
            let event = json!({ "type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code, "text": text });
            d.page.call("Input.dispatchKeyEvent", event).unwrap();
        }
    };
    let focused = "document.activeElement && document.activeElement.dataset.action";
    let mut tabs = 0;
    while d.eval(focused) != json!("rollback") {
        tabs += 1;
        assert!(tabs < 40, "Tab never reached the rollback button");
        key(&mut d, "Tab", 9);
    }
    key(&mut d, "Enter", 13);
    d.wait("document.getElementById('dialog').open && document.activeElement.id === 'dialog-reason'");
    key(&mut d, "Escape", 27);
    d.wait("!document.getElementById('dialog').open");
}

#[test]
fn fifty_services_render() {
    let Some(mut d) = open(Setup { services: 50, ..Setup::default() }) else { return };
    d.ready();
    assert_eq!(d.eval("document.querySelectorAll('section.svc').length"), json!(50));
    let paint = d.eval("performance.getEntriesByName('switchyard-first-paint')[0].startTime").as_f64().unwrap();
    let ms = d.eval("performance.getEntriesByName('switchyard-rendered')[0].startTime").as_f64().unwrap();
    let bytes = d.eval("performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation')).filter(e => e.name.includes('/ui')).reduce((s, e) => s + e.encodedBodySize, 0)");
    // The figure for the notes: `SWITCHYARD_BIN=target/release/switchyard cargo test --test dashboard fifty -- --nocapture`.
    eprintln!(
        "dashboard: 50 services painted {paint:.0} ms and complete (figures, history) {ms:.0} ms after navigation start; \
         page and assets {bytes} bytes"
    );
    let errors = d.errors_except(&[]);
    assert!(errors.is_empty(), "browser errors: {errors:?}");
}

#[test]
fn in_cluster_mode_the_page_lists_the_replicas_and_says_when_the_store_is_gone() {
    if !common::etcd::available() {
        return;
    }
    let mut etcd = common::etcd::Etcd::start();
    let Some(mut d) = open(Setup { etcd: Some(etcd.url()), ..Setup::default() }) else { return };
    d.ready();
    d.wait(
        "document.getElementById('cluster').textContent.includes('cluster (etcd, connected)') && \
         document.querySelectorAll('#cluster tbody tr').length === 1",
    );
    let row = d.text("#cluster tbody tr");
    assert!(row.contains("dash-a") && row.contains("shop v1"), "{row}");
    etcd.stop();
    d.wait("document.getElementById('cluster').textContent.includes('store unreachable since')");
    assert_eq!(d.errors_except(&[]), Vec::<String>::new());
}

#[test]
fn ctl_whoami_names_the_token_and_its_role() {
    let (sy, _apps, _dir) = start(&Setup { tokens: true, ..Setup::default() });
    let admin = sy.admin_url();
    let (code, out, err) = ctl(&admin, &["--token", OP, "whoami"]);
    assert_eq!((code, out.as_str()), (0, "api (operator)\n"), "{err}");
    let (code, out, _) = ctl(&admin, &["whoami", "--token", VIEW, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!({"actor": "dash", "role": "viewer"}));
    let (code, _, err) = ctl(&admin, &["--token", "wrong", "whoami"]);
    assert_eq!(code, 1);
    assert!(err.contains("missing or unknown bearer token"), "{err}");
    drop(sy);

    let (sy, _apps, _dir) = start(&Setup::default());
    let (code, out, _) = ctl(&sy.admin_url(), &["whoami"]);
    assert_eq!((code, out.as_str()), (0, "no token needed: anyone reaching the admin API is an operator\n"));
}
