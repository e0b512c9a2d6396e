//! One `[[service]]`: its hosts, pools, traffic, stickiness, health and timeouts.

use crate::Weight;
use crate::error::Problems;
use crate::model::{Health, Pool, Protocol, Service, Sticky, Timeouts, Traffic};
use crate::reader::{Field, Table};
use std::collections::BTreeMap;
use std::time::Duration;
use toml::de::DeValue;

/// Where a service's identifying values stand, for the checks across services.
pub(crate) struct Spans {
    pub(crate) name_at: usize,
    pub(crate) hosts_at: Vec<usize>,
    /// Where a pool says `discover = true` (it needs `[cluster]`).
    pub(crate) discover_at: Option<usize>,
}

pub(crate) fn service(mut t: Table, p: &mut Problems) -> (Service, Spans) {
    let start = t.start();
    let name_field = t.require("name", p);
    let name = name_field.and_then(|f| f.str(p)).unwrap_or_default().to_owned();
    if let Some(f) = name_field.filter(|_| !valid_name(&name)) {
        p.at(f.at(), format!("service name \"{name}\" must be non-empty letters, digits, `-`, `_` or `.`"));
    }
    let label = format!("service \"{name}\"");
    let (hosts, hosts_at) = hosts(t.take("hosts"), p);
    let mut discover_at = None;
    let pools = pools(t.take("pools"), p, &label, &mut discover_at).unwrap_or_default();
    if pools.is_empty() && p.is_empty() {
        p.at(start, format!("{label} has no pools (add [service.pools.NAME])"));
    }
    let traffic = match t.require("traffic", p).and_then(|f| f.table(p, "[service.traffic]")) {
        Some(tt) => traffic(tt, &pools, p),
        None => Traffic::default(),
    };
    let sticky = t.take("sticky").and_then(|f| sticky(f, p));
    let override_header = t.take("override").and_then(|f| {
        let mut tt = f.table(p, "`override`")?;
        let h = tt.require("header", p).and_then(|h| header_name(h, p));
        tt.finish(p);
        h
    });
    let min_healthy = t.take("min_healthy").and_then(|f| f.count(p, 0)).unwrap_or(1);
    let drain_timeout = t.take("drain_timeout").and_then(|f| f.duration(p));
    let health = t.take("health").and_then(|f| f.table(p, "[service.health]")).map(|tt| health(tt, p));
    let timeouts = t.take("timeouts").and_then(|f| f.table(p, "[service.timeouts]")).map(|tt| timeouts(tt, p));
    let rollout = t
        .take("rollout")
        .and_then(|f| f.table(p, "[service.rollout]"))
        .map(|tt| crate::rollout::settings(tt, &crate::RolloutSettings::default(), p));
    t.finish(p);
    let service = Service {
        name,
        hosts,
        sticky,
        override_header,
        min_healthy,
        drain_timeout,
        traffic,
        pools,
        health,
        timeouts: timeouts.unwrap_or_default(),
        rollout: rollout.unwrap_or_default(),
    };
    let name_at = name_field.map_or(start, |f| f.at());
    (service, Spans { name_at, hosts_at, discover_at })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn hosts(field: Option<Field>, p: &mut Problems) -> (Vec<String>, Vec<usize>) {
    let Some(f) = field else {
        return (Vec::new(), Vec::new());
    };
    let Some(items) = f.strings(p) else {
        return (Vec::new(), Vec::new());
    };
    if items.is_empty() {
        p.at(f.at(), "`hosts` is empty: omit it or use [\"*\"] for a catch-all service");
    }
    if items.iter().any(|(h, _)| *h == "*") {
        if items.len() > 1 {
            p.at(f.at(), "`hosts` mixes \"*\" with host names");
        }
        return (Vec::new(), Vec::new());
    }
    let mut out = Vec::new();
    for (h, at) in items {
        if !valid_host(h) {
            p.at(at, format!("invalid host \"{h}\" (a DNS name without port or scheme)"));
        }
        let h = h.to_ascii_lowercase();
        // The same name twice (perhaps in another case) is one host.
        if !out.iter().any(|(seen, _)| *seen == h) {
            out.push((h, at));
        }
    }
    out.into_iter().unzip()
}

/// A DNS name without port or scheme.
pub(crate) fn valid_host(h: &str) -> bool {
    !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn pools(field: Option<Field>, p: &mut Problems, label: &str, discover_at: &mut Option<usize>) -> Option<Vec<Pool>> {
    let mut t = field?.table(p, format!("[service.pools] of {label}"))?;
    let mut out = Vec::new();
    for f in t.take_all() {
        if !valid_name(f.key) {
            p.at(f.key_at, format!("pool name \"{}\" must be letters, digits, `-`, `_` or `.`", f.key));
        }
        let Some(mut pt) = f.table(p, format!("[service.pools.{}]", f.key)) else {
            continue;
        };
        let discover = match pt.take("discover") {
            None => false,
            Some(df) => {
                let on = df.bool(p).unwrap_or(false);
                if on {
                    discover_at.get_or_insert(df.at());
                }
                on
            }
        };
        let mut backends = Vec::new();
        // A discovering pool may start with no backend of its own.
        let backends_field = if discover { pt.take("backends") } else { pt.require("backends", p) };
        if let Some(bf) = backends_field {
            let list = bf.strings(p).unwrap_or_default();
            if list.is_empty() && bf.value().is_array() && !discover {
                p.at(bf.at(), format!("pool \"{}\" has an empty backend list", f.key));
            }
            for (b, at) in list {
                match check_backend(b) {
                    Ok(()) => backends.push(b.to_owned()),
                    Err(e) => p.at(at, e),
                }
            }
        }
        let protocol = match pt.take("protocol") {
            None => Protocol::Http1,
            Some(pf) => match pf.str(p) {
                Some("http1") | None => Protocol::Http1,
                Some("h2c") => Protocol::H2c,
                Some(other) => {
                    p.at(pf.at(), format!("`protocol` must be \"http1\" or \"h2c\", found \"{other}\""));
                    Protocol::Http1
                }
            },
        };
        pt.finish(p);
        out.push(Pool { name: f.key.to_owned(), backends, protocol, discover, discovered: Vec::new() });
    }
    t.finish(p);
    Some(out)
}

/// A backend is `host:port` (IPv4, `[IPv6]` or a DNS name), nothing more.
pub fn check_backend(b: &str) -> Result<(), String> {
    let bad = || format!("invalid backend address \"{b}\" (expected HOST:PORT)");
    let auth: http::uri::Authority = b.parse().map_err(|_| bad())?;
    if auth.as_str().contains('@') || auth.port_u16().is_none_or(|port| port == 0) || auth.host().is_empty() {
        return Err(bad());
    }
    Ok(())
}

fn traffic(mut t: Table, pools: &[Pool], p: &mut Problems) -> Traffic {
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    let active = t.take("active");
    let weights = t.take("weights");
    let out = match (active, weights) {
        (Some(_), Some(w)) => {
            p.at(w.key_at, "[service.traffic] sets both `active` and `weights`; choose one");
            Traffic::default()
        }
        (None, None) => {
            p.at(t.start(), "[service.traffic] needs `active = POOL` or `weights = { POOL = N, … }`");
            Traffic::default()
        }
        (Some(a), None) => match a.str(p) {
            Some(pool) if names.contains(&pool) => Traffic::all_to(pool, names.iter().copied()),
            Some(pool) => {
                p.at(a.at(), unknown_pool(pool, &names));
                Traffic::default()
            }
            None => Traffic::default(),
        },
        (None, Some(w)) => weights_of(w, &names, p),
    };
    t.finish(p);
    out
}

fn weights_of(field: Field, names: &[&str], p: &mut Problems) -> Traffic {
    let Some(mut t) = field.table(p, "`weights`") else {
        return Traffic::default();
    };
    let mut map: BTreeMap<String, Weight> = names.iter().map(|n| ((*n).to_owned(), Weight::ZERO)).collect();
    let mut sum = 0u32;
    let mut ok = true;
    for f in t.take_all() {
        let text = match f.value() {
            DeValue::Integer(i) if i.radix() == 10 => i.as_str().to_owned(),
            DeValue::Float(x) => x.as_str().to_owned(),
            other => {
                p.at(f.at(), format!("weight of `{}` must be a number, found {}", f.key, other.type_str()));
                ok = false;
                continue;
            }
        };
        if !names.contains(&f.key) {
            p.at(f.key_at, unknown_pool(f.key, names));
            ok = false;
            continue;
        }
        match Weight::parse(&text) {
            Ok(w) => {
                sum += w.0;
                map.insert(f.key.to_owned(), w);
            }
            Err(e) => {
                p.at(f.at(), format!("`{}`: {e}", f.key));
                ok = false;
            }
        }
    }
    if ok && sum != Weight::FULL.0 {
        p.at(field.at(), format!("weights add up to {}, not 100", Weight(sum)));
    }
    Traffic(map)
}

fn unknown_pool(pool: &str, names: &[&str]) -> String {
    format!("unknown pool \"{pool}\" (pools: {})", names.join(", "))
}

fn sticky(f: Field, p: &mut Problems) -> Option<Sticky> {
    let mut t = f.table(p, "`sticky`")?;
    let cookie = t.take("cookie");
    let header = t.take("header");
    let max_age = t.take("max_age");
    let out = match (cookie, header) {
        (Some(c), None) => {
            let name = c.str(p)?;
            if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
                p.at(c.at(), format!("invalid cookie name \"{name}\""));
            }
            let max_age = max_age.and_then(|m| m.duration(p)).unwrap_or(Duration::from_secs(30 * 86_400));
            Some(Sticky::Cookie { name: name.to_owned(), max_age })
        }
        (None, Some(h)) => {
            if let Some(m) = max_age {
                p.at(m.key_at, "`max_age` applies to `sticky.cookie` only");
            }
            header_name(h, p).map(|name| Sticky::Header { name })
        }
        _ => {
            p.at(f.at(), "`sticky` needs exactly one of `cookie = NAME` or `header = NAME`");
            None
        }
    };
    t.finish(p);
    out
}

fn header_name(f: Field, p: &mut Problems) -> Option<String> {
    let s = f.str(p)?;
    match http::HeaderName::from_bytes(s.as_bytes()) {
        Ok(h) => Some(h.as_str().to_owned()),
        Err(_) => {
            p.at(f.at(), format!("invalid header name \"{s}\""));
            None
        }
    }
}

fn health(mut t: Table, p: &mut Problems) -> Health {
    let mut h = Health {
        path: "/healthz".into(),
        host: None,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        healthy_threshold: 2,
        unhealthy_threshold: 3,
    };
    if let Some(f) = t.take("path") {
        match f.str(p) {
            Some(s) if s.starts_with('/') && http::uri::PathAndQuery::try_from(s).is_ok() => h.path = s.into(),
            Some(s) => p.at(f.at(), format!("`path` must be an absolute request path, found \"{s}\"")),
            None => {}
        }
    }
    if let Some(f) = t.take("host") {
        match f.str(p) {
            Some(s) if !s.contains('@') && s.parse::<http::uri::Authority>().is_ok() => h.host = Some(s.to_owned()),
            Some(s) => p.at(f.at(), format!("`host` must be a host name (optionally with :PORT), found \"{s}\"")),
            None => {}
        }
    }
    if let Some(d) = t.take("interval").and_then(|f| positive(f, p)) {
        h.interval = d;
    }
    if let Some(d) = t.take("timeout").and_then(|f| positive(f, p)) {
        h.timeout = d;
    }
    if let Some(n) = t.take("healthy_threshold").and_then(|f| f.count(p, 1)) {
        h.healthy_threshold = n;
    }
    if let Some(n) = t.take("unhealthy_threshold").and_then(|f| f.count(p, 1)) {
        h.unhealthy_threshold = n;
    }
    t.finish(p);
    h
}

fn timeouts(mut t: Table, p: &mut Problems) -> Timeouts {
    let mut out = Timeouts::default();
    if let Some(d) = t.take("connect").and_then(|f| positive(f, p)) {
        out.connect = d;
    }
    if let Some(d) = t.take("request").and_then(|f| positive(f, p)) {
        out.request = d;
    }
    if let Some(d) = t.take("idle").and_then(|f| positive(f, p)) {
        out.idle = d;
    }
    if let Some(d) = t.take("pool_idle").and_then(|f| positive(f, p)) {
        out.pool_idle = d;
    }
    t.finish(p);
    out
}

fn positive(f: Field, p: &mut Problems) -> Option<Duration> {
    f.positive_duration(p)
}
