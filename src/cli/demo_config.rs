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

/// Whether the generated file carries `ROLLOUT_TABLE`. It only parses once the
/// config crate reads `[service.rollout]` (issue 11); until then the demo runs
/// with the built-in rollout defaults. A unit test below says when to flip it.
pub const INCLUDE_ROLLOUT_TABLE: bool = false;

/// The config text for the fleets' addresses.
pub fn text(listen: SocketAddr, admin: SocketAddr, blue: &[String], green: &[String], rollout: bool) -> String {
    let quoted = |v: &[String]| v.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    let rollout = if rollout { format!("\n{ROLLOUT_TABLE}") } else { String::new() };
    format!(
        "# switchyard demo config (generated)\n[listener]\naddress = \"{listen}\"\n\n[admin]\naddress = \"{admin}\"\n\n[state]\nfile = \"state.json\"\n\n[[service]]\nname = \"{SERVICE}\"\n\n[service.traffic]\nactive = \"blue\"\n\n[service.pools.blue]\nbackends = [{}]\n\n[service.pools.green]\nbackends = [{}]\n{rollout}",
        quoted(blue),
        quoted(green)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(rollout: bool) -> Result<switchyard_config::Config, switchyard_config::ConfigError> {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let t = text(addr, addr, &["127.0.0.1:1".into()], &["127.0.0.1:2".into()], rollout);
        switchyard_config::parse(&t, Path::new("demo.toml"))
    }

    #[test]
    fn the_demo_config_is_valid() {
        let config = parse(INCLUDE_ROLLOUT_TABLE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.services[0].name, SERVICE);
    }

    /// A tripwire: once `[service.rollout]` parses, `INCLUDE_ROLLOUT_TABLE` must be
    /// turned on (and the table must then mean what the demo's help promises).
    #[test]
    fn the_rollout_table_is_included_exactly_when_it_parses() {
        let parsed = parse(true);
        assert_eq!(
            parsed.is_ok(),
            INCLUDE_ROLLOUT_TABLE,
            "set demo_config::INCLUDE_ROLLOUT_TABLE to whether [service.rollout] parses: {:?}",
            parsed.as_ref().err().map(ToString::to_string)
        );
        if let Ok(c) = parsed {
            let r = &c.services[0].rollout;
            let steps: Vec<f64> = r.steps.iter().map(|w| f64::from(w.0) / 100.0).collect();
            assert_eq!(steps, [10.0, 50.0, 100.0]);
            assert_eq!(r.step_interval, std::time::Duration::from_secs(10));
            assert_eq!(r.interval, std::time::Duration::from_secs(2));
            assert_eq!((r.failure_limit, r.analysis.min_requests), (2, 50));
        }
    }
}
