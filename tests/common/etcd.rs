//! A real etcd (Debian's `etcd-server`, 3.4) for the cluster tests: loopback
//! ports, a temporary data dir, stopped by pid. Keys are written and compacted
//! through etcd's JSON gateway (`/v3/kv/...`), so no etcdctl is needed.

use super::http::request;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd; killed on drop.
pub struct Etcd {
    child: Option<Child>,
    pub client: SocketAddr,
    peer: SocketAddr,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Two free loopback ports (bound and released: etcd takes no port 0).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Whether the tests can run: `etcd` is installed. Outside CI a missing etcd
/// skips with a message; under CI (`CI` set) it fails.
pub fn available() -> bool {
    let found = Command::new("etcd").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "etcd is not installed (apt-get install etcd-server)");
        eprintln!("skipping: etcd is not installed (apt-get install etcd-server)");
    }
    found
}

impl Etcd {
    pub fn start() -> Etcd {
        let tmp = tempfile::tempdir().unwrap();
        let mut e =
            Etcd { child: None, client: free_port(), peer: free_port(), dir: tmp.path().join("data"), _tmp: tmp };
        e.restart();
        e
    }

    /// The endpoint URL for `[cluster] etcd`.
    pub fn url(&self) -> String {
        format!("http://{}", self.client)
    }

    /// Starts it (again) on the same ports and data, and waits until it answers.
    pub fn restart(&mut self) {
        let (c, p) = (format!("http://{}", self.client), format!("http://{}", self.peer));
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--name", "default", "--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args(["--listen-peer-urls", &p, "--initial-advertise-peer-urls", &p])
            .args(["--initial-cluster", &format!("default={p}"), "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.get("/health").is_some_and(|b| b.contains("true")) {
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it (SIGKILL): the store is gone until `restart`.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Puts `value` at `key` (bytes as given: garbage welcome); the new revision.
    pub fn put(&self, key: &str, value: &[u8]) -> i64 {
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(key.as_bytes()), b64(value));
        let answer = self.post("/v3/kv/put", &body);
        revision(&answer)
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &str) {
        self.post("/v3/kv/deleterange", &format!(r#"{{"key":"{}"}}"#, b64(key.as_bytes())));
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        let body = format!(r#"{{"key":"{}"}}"#, b64(b"/"));
        revision(&self.post("/v3/kv/range", &body))
    }

    /// Compacts history up to `rev`: watches from older revisions are cancelled.
    pub fn compact(&self, rev: i64) {
        let answer = self.post("/v3/kv/compaction", &format!(r#"{{"revision":"{rev}","physical":true}}"#));
        assert!(answer.contains("header"), "compaction failed: {answer}");
    }

    fn get(&self, path: &str) -> Option<String> {
        request(self.client, "GET", path, &[], "").map(|(_, b)| b)
    }

    fn post(&self, path: &str, body: &str) -> String {
        request(self.client, "POST", path, &[], body).unwrap_or_else(|| panic!("etcd did not answer {path}")).1
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn revision(answer: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(answer.trim()).unwrap_or_else(|_| panic!("not JSON: {answer}"));
    v["header"]["revision"].as_str().and_then(|r| r.parse().ok()).unwrap_or_else(|| panic!("no revision: {answer}"))
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
