//! Starting the real binary: temp config, bound addresses read from its log,
//! signals by pid.

#![allow(dead_code, unsafe_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

pub mod cluster;
pub mod etcd;
pub mod http;
pub mod load;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// The binary `Sy` starts: `SWITCHYARD_BIN` when set (to time a release
/// build, e.g. the dashboard's render figure), else this build's.
fn serve_bin() -> std::ffi::OsString {
    std::env::var_os("SWITCHYARD_BIN").unwrap_or_else(|| BIN.into())
}

/// A running `switchyard serve`.
pub struct Sy {
    pub child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub tls: Option<SocketAddr>,
    pub log: mpsc::Receiver<String>,
    /// Everything logged up to the listening line.
    pub startup_log: String,
    /// While true, nobody reads its stderr (a stuck log pipe).
    stalled: Arc<(Mutex<bool>, Condvar)>,
}

/// A config for one service `shop` with pools blue and green, in `dir`.
pub fn write_config(dir: &Path, blue: &[String], green: &[String], traffic: &str) -> PathBuf {
    let q = |v: &[String]| v.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    let text = format!(
        "[runtime]\nshutdown_timeout = \"10s\"\n[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n[state]\nfile = \"state/sy.json\"\n[[service]]\nname = \"shop\"\n[service.traffic]\n{traffic}\n[service.pools.blue]\nbackends = [{}]\n[service.pools.green]\nbackends = [{}]\n",
        q(blue),
        q(green)
    );
    let path = dir.join("sy.toml");
    // Write then rename, as config tools do, so a reader never sees half a file.
    let tmp = dir.join(".sy.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

impl Sy {
    /// Starts `switchyard serve -c CONFIG ARGS…` and waits for its listening line.
    pub fn start(config: &Path, args: &[&str]) -> Sy {
        match Sy::try_start(config, args) {
            Ok(sy) => sy,
            Err((status, log)) => panic!("switchyard exited {status:?}:\n{log}"),
        }
    }

    /// Like `start`, but an early exit is returned with everything it logged.
    pub fn try_start(config: &Path, args: &[&str]) -> Result<Sy, (ExitStatus, String)> {
        Sy::try_start_env(config, args, &[])
    }

    /// `try_start` with extra environment variables.
    pub fn try_start_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Sy, (ExitStatus, String)> {
        let mut child = Command::new(serve_bin())
            .args(["serve", "-c"])
            .arg(config)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env_remove("SWITCHYARD_ADMIN_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let stalled = Arc::new((Mutex::new(false), Condvar::new()));
        let stall = stalled.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
                let (lock, resumed) = &*stall;
                let _g = resumed.wait_while(lock.lock().unwrap(), |stalled| *stalled).unwrap();
            }
        });
        let mut seen = String::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    if line.contains("switchyard listening") {
                        let proxy = field(&line, "proxy=").parse().unwrap();
                        let admin = field(&line, "admin=").parse().unwrap();
                        let tls = field(&line, "tls=").parse().ok();
                        return Ok(Sy { child, proxy, admin, tls, log: rx, startup_log: seen, stalled });
                    }
                }
                Err(_) => {
                    let status = child.wait().unwrap();
                    return Err((status, seen));
                }
            }
        }
    }

    /// Stops reading its stderr after the next line, as a stuck log pipe would
    /// (the pipe fills and writes to it block); `resume_log` reads on.
    pub fn stall_log(&self) {
        *self.stalled.0.lock().unwrap() = true;
    }

    pub fn resume_log(&self) {
        *self.stalled.0.lock().unwrap() = false;
        self.stalled.1.notify_all();
    }

    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    /// Waits for a log line containing `needle` (the event a test awaits).
    pub fn wait_log(&self, needle: &str) -> String {
        loop {
            let line = self
                .log
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        for _ in 0..3000 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("switchyard did not exit");
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }
}

impl Drop for Sy {
    fn drop(&mut self) {
        self.resume_log();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(key).unwrap() + key.len();
    line[start..].split_whitespace().next().unwrap()
}

/// Runs `switchyard ctl --admin URL ARGS…`; returns exit code, stdout, stderr.
pub fn ctl(admin: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("ctl")
        .args(["--admin", admin])
        .args(args)
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `switchyard app` process; killed on drop.
pub struct App {
    child: Child,
    pub addr: SocketAddr,
}

impl App {
    pub fn start(name: &str, extra: &[&str]) -> App {
        let mut child = Command::new(BIN)
            .args(["app", "--name", name, "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut lines = stderr.lines();
        let addr = loop {
            let line = lines.next().expect("app exited before listening").unwrap();
            if let Some(at) = line.find("addr=") {
                break line[at + 5..].split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        App { child, addr }
    }
}

impl App {
    /// Sends `sig` to the app by pid.
    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
