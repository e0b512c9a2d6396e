//! The demo's generated config file: one service `demo` with a blue and a green
//! fleet, and rollout settings quick enough to watch live.

use std::net::SocketAddr;

/// The demo's service name (the one every printed command uses).
pub const SERVICE: &str = "demo";

/// `[service.rollout]` for the demo: three steps of 10 s, judged every 2 s on
/// at least 50 requests, so a whole rollout takes about half a minute.
pub const ROLLOUT_TABLE: &str = "\
[service.rollout]
steps = [10, 50, 100]
step_interval = \"10s\"
interval = \"2s\"
max_step_duration = \"1m\"
failure_limit = 2

[service.rollout.analysis]
min_requests = 50
";

/// The config text for the fleets' addresses.
pub fn text(listen: SocketAddr, admin: SocketAddr, blue: &[String], green: &[String]) -> String {
    let quoted = |v: &[String]| v.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "# switchyard demo config (generated)\n[listener]\naddress = \"{listen}\"\n\n[admin]\naddress = \"{admin}\"\n\n[state]\nfile = \"state.json\"\n\n[[service]]\nname = \"{SERVICE}\"\n\n[service.traffic]\nactive = \"blue\"\n\n[service.pools.blue]\nbackends = [{}]\n\n[service.pools.green]\nbackends = [{}]\n\n{ROLLOUT_TABLE}",
        quoted(blue),
        quoted(green)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_demo_config_is_valid_and_its_rollout_is_the_one_the_help_promises() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let t = text(addr, addr, &["127.0.0.1:1".into()], &["127.0.0.1:2".into()]);
        let config = switchyard_config::parse(&t, Path::new("demo.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.services[0].name, SERVICE);
        let r = &config.services[0].rollout;
        let steps: Vec<f64> = r.steps.iter().map(|w| f64::from(w.0) / 100.0).collect();
        assert_eq!(steps, [10.0, 50.0, 100.0]);
        assert_eq!(r.step_interval, std::time::Duration::from_secs(10));
        assert_eq!(r.interval, std::time::Duration::from_secs(2));
        assert_eq!((r.failure_limit, r.analysis.min_requests), (2, 50));
    }
}
