//! Headless Chromium driven over the DevTools protocol, for the dashboard
//! tests: a blocking client on a plain WebSocket (text frames only, which is
//! all the protocol uses), so no browser-automation crate and no download —
//! Debian's `/usr/bin/chromium` is the browser.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where Chromium is: `SWITCHYARD_CHROMIUM`, else the first of the usual names on `PATH`.
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SWITCHYARD_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A headless Chromium with its own profile folder; killed on drop.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    /// `127.0.0.1:PORT` of its DevTools endpoint.
    devtools: String,
}

impl Browser {
    /// Starts `binary` headless on a free loopback DevTools port.
    pub fn launch(binary: &std::path::Path) -> Result<Browser, String> {
        let profile = std::env::temp_dir().join(format!("sy-chromium-{}-{}", std::process::id(), unique()));
        let mut child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--window-size=1200,900",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so the renderers and helpers it starts stop with it.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep draining stderr so Chromium never blocks on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("DevTools listening on ws://").nth(1)
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
            }
        });
        let devtools = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("Chromium did not open its DevTools port within 30 s".into());
            }
        };
        Ok(Browser { child, profile, devtools })
    }

    /// A new tab, with the Page, Runtime, Log and Network domains on.
    pub fn page(&self) -> Result<Page, String> {
        let target = http(&self.devtools, "PUT", "/json/new?about:blank")?;
        let target: Value = serde_json::from_str(&target).map_err(|e| format!("/json/new: {e}: {target}"))?;
        let url = target["webSocketDebuggerUrl"].as_str().ok_or("no webSocketDebuggerUrl")?;
        let path = url.split_once("ws://").and_then(|(_, r)| r.find('/').map(|i| &r[i..])).ok_or("bad ws url")?;
        let mut page = Page { ws: Ws::connect(&self.devtools, path)?, next: 0, events: Vec::new() };
        for domain in ["Page", "Runtime", "Log", "Network"] {
            page.call(&format!("{domain}.enable"), json!({}))?;
        }
        Ok(page)
    }
}

impl Drop for Browser {
    /// Stops the browser and every process it started (its process group, whose id
    /// is the browser's pid), then removes the profile. Killing the browser alone
    /// left its helpers writing into the profile after it was removed.
    fn drop(&mut self) {
        stop_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[allow(unsafe_code)] // kill(2) of a process group has no safe std equivalent
fn stop_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: a plain syscall; the group is the one `launch` created for this child.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// One tab.
pub struct Page {
    ws: Ws,
    next: u64,
    events: Vec<Value>,
}

impl Page {
    /// Sends one command and returns its result; events that arrive meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next += 1;
        let id = self.next;
        self.ws.send(&json!({ "id": id, "method": method, "params": params }).to_string())?;
        loop {
            let msg: Value = serde_json::from_str(&self.ws.recv()?).map_err(|e| format!("bad CDP message: {e}"))?;
            if msg["id"].as_u64() == Some(id) {
                if let Some(e) = msg.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(msg["result"].clone());
            }
            if msg.get("method").is_some() {
                self.events.push(msg);
            }
        }
    }

    /// Loads `url` and waits for its load event.
    pub fn goto(&mut self, url: &str) -> Result<(), String> {
        let seen = self.events.len();
        self.call("Page.navigate", json!({ "url": url }))?;
        while !self.events[seen..].iter().any(|e| e["method"] == "Page.loadEventFired") {
            let msg: Value = serde_json::from_str(&self.ws.recv()?).map_err(|e| e.to_string())?;
            self.events.push(msg);
        }
        Ok(())
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true, "userGesture": true }),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"].as_str().or(ex["text"].as_str()).unwrap_or("exception");
            return Err(format!("{text} (in {expression})"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Waits, in the page, until `predicate` (a JS expression) is truthy, and
    /// returns its value; an error after `timeout`.
    pub fn wait_for(&mut self, predicate: &str, timeout: Duration) -> Result<Value, String> {
        let ms = timeout.as_millis();
        let script = format!(
            "new Promise((ok, fail) => {{ const t0 = Date.now(); const tick = () => {{ let v = null; \
             try {{ v = ({predicate}); }} catch (e) {{ v = null; }} \
             if (v) ok(v); else if (Date.now() - t0 > {ms}) fail(new Error('timed out after {ms} ms waiting for: ' + {p})); \
             else setTimeout(tick, 25); }}; tick(); }})",
            p = serde_json::to_string(predicate).unwrap_or_default()
        );
        self.eval(&script)
    }

    /// Every event received so far.
    pub fn events(&mut self) -> Result<&[Value], String> {
        self.eval("0")?; // a round trip, so events sent before now are in
        Ok(&self.events)
    }

    /// Console errors, uncaught exceptions and browser-logged errors (CSP
    /// violations, failed loads), as text.
    pub fn errors(&mut self) -> Result<Vec<String>, String> {
        Ok(self
            .events()?
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.exceptionThrown" => Some(format!("exception: {}", p["exceptionDetails"])),
                    "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                        Some(format!("console.{}: {}", p["type"], p["args"]))
                    }
                    "Log.entryAdded" if p["entry"]["level"] == "error" => Some(format!(
                        "log ({}): {} {}",
                        p["entry"]["source"].as_str().unwrap_or("?"),
                        p["entry"]["text"].as_str().unwrap_or("?"),
                        p["entry"]["url"].as_str().unwrap_or("")
                    )),
                    _ => None,
                }
            })
            .collect())
    }

    /// The URL of every request the page sent.
    pub fn requests(&mut self) -> Result<Vec<String>, String> {
        Ok(self
            .events()?
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect())
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// One HTTP/1.1 request to the DevTools endpoint; the body of its answer.
fn http(addr: &str, method: &str, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("DevTools {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    // DevTools keeps the connection open: read the head, then Content-Length bytes.
    let mut reader = BufReader::new(s);
    let (mut status, mut length) = (String::new(), 0usize);
    reader.read_line(&mut status).map_err(|e| e.to_string())?;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(|_| format!("bad Content-Length in {line}"))?;
        }
    }
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("DevTools {method} {path}: {status}"));
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    String::from_utf8(body).map_err(|e| e.to_string())
}

/// A client WebSocket carrying text frames.
struct Ws {
    stream: TcpStream,
}

impl Ws {
    fn connect(addr: &str, path: &str) -> Result<Ws, String> {
        let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).map_err(|e| format!("WebSocket handshake: {e}"))?;
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(format!("WebSocket handshake refused: {}", String::from_utf8_lossy(&head)));
        }
        Ok(Ws { stream })
    }

    fn send(&mut self, text: &str) -> Result<(), String> {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x5a, 0x17, 0xc3, 0x8e];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).map_err(|e| format!("CDP send: {e}"))
    }

    /// The next whole text message (fragments joined, pings answered).
    fn recv(&mut self) -> Result<String, String> {
        let mut message = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.stream.read_exact(&mut h).map_err(|e| format!("CDP receive: {e}"))?;
            let (fin, opcode) = (h[0] & 0x80 != 0, h[0] & 0x0f);
            let len = match h[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b).map_err(|e| e.to_string())?;
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b).map_err(|e| e.to_string())?;
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut mask = [0u8; 4];
            if h[1] & 0x80 != 0 {
                self.stream.read_exact(&mut mask).map_err(|e| e.to_string())?;
            }
            let mut payload = vec![0u8; usize::try_from(len).map_err(|e| e.to_string())?];
            self.stream.read_exact(&mut payload).map_err(|e| e.to_string())?;
            if h[1] & 0x80 != 0 {
                payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= mask[i % 4]);
            }
            match opcode {
                0x8 => return Err("DevTools closed the connection".into()),
                0x9 => {
                    let mut pong = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    pong.extend_from_slice(&payload);
                    self.stream.write_all(&pong).map_err(|e| e.to_string())?;
                }
                0xa => {}
                _ => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).map_err(|e| e.to_string());
                    }
                }
            }
        }
    }
}
