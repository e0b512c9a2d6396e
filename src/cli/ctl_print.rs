//! Human tables for `ctl` output.

use serde_json::Value;

pub fn traffic(v: &Value) -> String {
    v.as_object().map(|m| m.iter().map(|(p, w)| format!("{p}={w}")).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn health(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(p, pool)| {
                    let total = pool["backends"].as_array().map_or(0, Vec::len);
                    format!("{p} {}/{total} healthy, {} in flight", pool["healthy"], pool["inflight"])
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn row(v: &Value) -> String {
    let active = v["active"].as_str().unwrap_or("(split)");
    format!(
        "{:<16} {:>7}  {:<10} {:<24} {}",
        v["name"].as_str().unwrap_or("?"),
        super::ctl_fmt::num(&v["version"]),
        active,
        traffic(&v["traffic"]),
        health(&v["pools"])
    )
}

const HEADER: &str = "SERVICE          VERSION  ACTIVE     TRAFFIC                  POOLS";

/// One service after a change (and its rollout, while one runs).
pub fn service(v: &Value) {
    println!("{HEADER}\n{}", row(v));
    if super::ctl_rollout_print::is_running(&v["rollout"]) {
        println!("  rollout: {}", super::ctl_rollout_print::summary(&v["rollout"]));
    }
}

/// The generation and the last reload, above `status` of every service.
pub fn reload_header(v: &Value) {
    println!("generation {}", v["generation"]);
    if let Some(r) = v.get("last_reload").filter(|r| !r.is_null()) {
        let ok = if r["ok"].as_bool() == Some(true) { "ok" } else { "FAILED" };
        println!("last reload: {ok} at {} ({})", r["at"].as_str().unwrap_or("?"), r["source"].as_str().unwrap_or("?"));
        for p in r["problems"].as_array().into_iter().flatten() {
            println!("  {}", p.as_str().unwrap_or_default());
        }
    }
}

/// `history SERVICE`.
pub fn history(v: &Value) {
    println!("{:>7}  {:<20}  {:<13} {:<22} {:<22} {:<8} REASON", "VERSION", "AT", "KIND", "FROM", "TO", "ACTOR");
    for e in v["events"].as_array().into_iter().flatten() {
        let forced = if e["forced"].as_bool() == Some(true) { " [forced]" } else { "" };
        println!(
            "{:>7}  {:<20}  {:<13} {:<22} {:<22} {:<8} {}{forced}",
            super::ctl_fmt::num(&e["version"]),
            e["at"].as_str().unwrap_or("?"),
            e["kind"].as_str().unwrap_or("?"),
            traffic(&e["from"]),
            traffic(&e["to"]),
            e["actor"].as_str().unwrap_or("?"),
            e["reason"].as_str().unwrap_or("")
        );
    }
}

/// `cluster`: the store, then one row per replica.
pub fn cluster(v: &Value) {
    let store = v["store"].as_str().unwrap_or("?");
    if store == "none" {
        println!("store: none (one proxy; no [cluster] in its config)");
        return;
    }
    let state = match (v["connected"].as_bool(), v["unreachable_since"].as_str()) {
        (Some(true), _) => "connected".to_owned(),
        (_, Some(since)) => format!("UNREACHABLE since {since}"),
        _ => "UNREACHABLE".to_owned(),
    };
    println!("store: {store}, {state}; this replica: {}", v["name"].as_str().unwrap_or("?"));
    println!("{:<24} {:<22} {:>10}  {:<32} REJECTED", "REPLICA", "ADMIN", "GENERATION", "APPLIED");
    let pairs = |m: &Value, f: &dyn Fn(&Value) -> String| {
        let text: Vec<String> = m.as_object().into_iter().flatten().map(|(k, x)| format!("{k}@{}", f(x))).collect();
        if text.is_empty() { "-".to_owned() } else { text.join(" ") }
    };
    for r in v["replicas"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:<22} {:>10}  {:<32} {}",
            r["name"].as_str().unwrap_or("?"),
            r["admin"].as_str().unwrap_or("?"),
            super::ctl_fmt::num(&r["generation"]),
            pairs(&r["applied"], &|x| super::ctl_fmt::num(x)),
            pairs(&r["rejected"], &|x| format!(
                "{} ({})",
                super::ctl_fmt::num(&x["version"]),
                x["error"].as_str().unwrap_or("?")
            )),
        );
    }
}
