//! The global tables: `[runtime]`, `[listener]`, `[admin]`, `[state]`, `[cluster]`.

use crate::error::Problems;
use crate::model::{Admin, Cluster, Listener, NamedToken, Role, Runtime, State, Tls};
use crate::reader::{Field, Table};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Placeholder for a value that failed to parse; the config is discarded anyway.
const NO_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// hyper's smallest read buffer; request heads are bounded by it.
pub(crate) const MIN_HEADER_BYTES: i64 = 8192;

pub(crate) fn runtime(field: Option<Field>, p: &mut Problems) -> Runtime {
    let mut rt = Runtime { worker_threads: None, shutdown_timeout: Duration::from_secs(30) };
    let Some(mut t) = field.and_then(|f| f.table(p, "[runtime]")) else {
        return rt;
    };
    if let Some(f) = t.take("worker_threads") {
        rt.worker_threads = f.count(p, 1).map(|n| n as usize);
    }
    if let Some(d) = t.take("shutdown_timeout").and_then(|f| f.duration(p)) {
        rt.shutdown_timeout = d;
    }
    t.finish(p);
    rt
}

pub(crate) fn listener(field: Option<Field>, p: &mut Problems, base: &Path) -> Listener {
    let mut l = Listener {
        address: NO_ADDR,
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_header_bytes: 65536,
        max_connections: 10_000,
        max_upstream_connections: 0,
        max_request_body: 0,
        tls: None,
    };
    let Some(field) = field else {
        p.at(0, "missing table [listener]");
        return l;
    };
    let Some(mut t) = field.table(p, "[listener]") else {
        return l;
    };
    if let Some(a) = t.require("address", p).and_then(|f| f.socket_addr(p)) {
        l.address = a;
    }
    if let Some(d) = t.take("header_timeout").and_then(|f| f.positive_duration(p)) {
        l.header_timeout = d;
    }
    if let Some(d) = t.take("idle_timeout").and_then(|f| f.positive_duration(p)) {
        l.idle_timeout = d;
    }
    if let Some(n) = t.take("max_header_bytes").and_then(|f| f.count(p, MIN_HEADER_BYTES)) {
        l.max_header_bytes = n as usize;
    }
    if let Some(n) = t.take("max_connections").and_then(|f| f.count(p, 1)) {
        l.max_connections = n as usize;
    }
    if let Some(n) = t.take("max_upstream_connections").and_then(|f| f.count(p, 0)) {
        l.max_upstream_connections = n as usize;
    }
    if let Some(n) = t.take("max_request_body").and_then(|f| f.size(p)) {
        l.max_request_body = n;
    }
    l.tls = t.take("tls").and_then(|f| f.table(p, "[listener.tls]")).map(|t| tls(t, p, base));
    t.finish(p);
    l
}

fn tls(mut t: Table, p: &mut Problems, base: &Path) -> Tls {
    let address = t.require("address", p).and_then(|f| f.socket_addr(p)).unwrap_or(NO_ADDR);
    let cert = t.require("cert", p).and_then(|f| f.readable_file(p, base)).unwrap_or_default();
    let key = t.require("key", p).and_then(|f| f.readable_file(p, base)).unwrap_or_default();
    t.finish(p);
    Tls { address, cert, key }
}

pub(crate) fn admin(field: Option<Field>, p: &mut Problems, base: &Path) -> Admin {
    let mut a = Admin {
        address: SocketAddr::from(([127, 0, 0, 1], 9901)),
        token_file: None,
        preview_key_file: None,
        tokens: Vec::new(),
        hosts: Vec::new(),
    };
    let Some(mut t) = field.and_then(|f| f.table(p, "[admin]")) else {
        return a;
    };
    if let Some(addr) = t.take("address").and_then(|f| f.socket_addr(p)) {
        a.address = addr;
    }
    a.token_file = t.take("token_file").and_then(|f| f.secret_file(p, base, 1));
    a.preview_key_file = t.take("preview_key_file").and_then(|f| f.secret_file(p, base, 16));
    if let Some(items) = t.take("hosts").and_then(|f| f.strings(p)) {
        for (h, at) in items {
            if !crate::service::valid_host(h) {
                p.at(at, format!("invalid host \"{h}\" in [admin] hosts (a DNS name without port or scheme)"));
            }
            a.hosts.push(h.to_ascii_lowercase());
        }
    }
    if let Some(items) = t.take("tokens").and_then(|f| f.array(p)) {
        for item in items {
            if let Some(tt) = item.table(p, "[[admin.tokens]]") {
                a.tokens.push(named_token(tt, p, base));
            }
        }
    }
    t.finish(p);
    a
}

fn named_token(mut t: Table, p: &mut Problems, base: &Path) -> NamedToken {
    let name = t.require("name", p).and_then(|f| f.str(p)).unwrap_or_default().to_owned();
    let file = t.require("file", p).and_then(|f| f.secret_file(p, base, 1)).unwrap_or_default();
    let role = match t.take("role") {
        None => Role::Operator,
        Some(f) => match f.str(p) {
            Some("operator") | None => Role::Operator,
            Some("viewer") => Role::Viewer,
            Some(other) => {
                p.at(f.at(), format!("`role` must be \"operator\" or \"viewer\", found \"{other}\""));
                Role::Operator
            }
        },
    };
    t.finish(p);
    NamedToken { name, file, role }
}

pub(crate) fn state(field: Option<Field>, p: &mut Problems, base: &Path) -> State {
    let default = State { file: base.join("state/switchyard.json") };
    let Some(mut t) = field.and_then(|f| f.table(p, "[state]")) else {
        return default;
    };
    let file: Option<PathBuf> = t.require("file", p).and_then(|f| f.path(p, base));
    t.finish(p);
    file.map_or(default, |file| State { file })
}

pub(crate) fn cluster(field: Option<Field>, p: &mut Problems) -> Option<Cluster> {
    let mut t = field?.table(p, "[cluster]")?;
    let etcd = t.require("etcd", p).and_then(|f| f.strings(p)).unwrap_or_default();
    for (url, at) in &etcd {
        if let Err(e) = endpoint(url) {
            p.at(*at, format!("etcd endpoint \"{url}\": {e}"));
        }
    }
    let prefix = match t.take("prefix") {
        None => "/switchyard".to_owned(),
        Some(f) => match f.str(p) {
            Some(s) if s.starts_with('/') && s.trim_end_matches('/').len() > 1 => s.trim_end_matches('/').to_owned(),
            Some(s) => {
                p.at(f.at(), format!("`prefix` must start with \"/\" and name something, found \"{s}\""));
                String::new()
            }
            None => String::new(),
        },
    };
    let name = t.take("name").and_then(|f| {
        let s = f.str(p)?;
        let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
        if !ok {
            p.at(f.at(), format!("replica `name` \"{s}\" may only use letters, digits and . - _ :"));
        }
        Some(s.to_owned())
    });
    let lease_ttl = t.take("lease_ttl").and_then(|f| {
        let d = f.positive_duration(p)?;
        if d < Duration::from_secs(2) {
            p.at(f.at(), "`lease_ttl` must be at least 2s (etcd counts leases in seconds)");
        }
        Some(d)
    });
    if etcd.is_empty() {
        p.at(t.start(), "[cluster] needs at least one `etcd` endpoint");
    }
    t.finish(p);
    Some(Cluster {
        etcd: etcd.into_iter().map(|(s, _)| s.to_owned()).collect(),
        prefix,
        name,
        lease_ttl: lease_ttl.unwrap_or(Duration::from_secs(10)),
    })
}

/// Checks an etcd endpoint: `http://HOST:PORT` (TLS to etcd is not supported yet).
pub(crate) fn endpoint(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            "https is not supported; use http:// (etcd on a private network or loopback)".into()
        } else {
            "must look like http://HOST:PORT".into()
        });
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err("needs a port, like http://127.0.0.1:2379".into());
    };
    let host_ok = !host.is_empty()
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
            || crate::service::valid_host(host));
    if !host_ok {
        return Err(format!("\"{host}\" is not a host name or IP address"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("\"{port}\" is not a port")),
    }
}
