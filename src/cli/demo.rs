//! `switchyard demo`: a blue fleet and a green fleet (two apps each) in this process,
//! the proxy and the admin API in front, a throwaway state file, and the commands
//! to try printed on stdout. `--green-fail-rate`/`--green-latency` make the green
//! fleet misbehave and `--traffic` sends live traffic, to watch a rollout judge it.

use super::app::Misbehave;
use super::demo_config::{self, SERVICE};
use super::demo_traffic;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;

/// `demo` options.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where the proxy listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the admin API listens.
    #[arg(long, default_value = "127.0.0.1:9901")]
    pub admin: SocketAddr,
    /// Share of requests (0–1) the green fleet answers with a 500 (never `/healthz`).
    #[arg(long, default_value = "0", value_parser = super::app::parse_fail_rate)]
    pub green_fail_rate: f64,
    /// Added before every answer of the green fleet (e.g. `300ms`).
    #[arg(long, default_value = "0s", value_parser = super::app::parse_latency)]
    pub green_latency: Duration,
    /// Requests per second a built-in load generator sends to the proxy (0 = off).
    #[arg(long, default_value = "0", value_parser = demo_traffic::parse_rps)]
    pub traffic: u32,
}

/// Runs the demo until SIGTERM/SIGINT.
pub fn run(args: DemoArgs) -> ExitCode {
    super::init_tracing(false);
    let rt = match super::runtime(None) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(super::IO_FAILURE);
        }
    };
    let dir = std::env::temp_dir().join(format!("switchyard-demo-{}", std::process::id()));
    let code = rt.block_on(demo(&args, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    code
}

async fn demo(args: &DemoArgs, dir: &PathBuf) -> ExitCode {
    let mut fleets: Vec<(String, Vec<String>)> = Vec::new();
    let green = Misbehave { fail_rate: args.green_fail_rate, latency: args.green_latency };
    for (color, misbehave) in [("blue", Misbehave::default()), ("green", green)] {
        let mut addrs = Vec::new();
        for i in 1..=2 {
            let listener = match TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("cannot start the demo fleet: {e}");
                    return ExitCode::from(super::IO_FAILURE);
                }
            };
            addrs.push(listener.local_addr().map(|a| a.to_string()).unwrap_or_default());
            tokio::spawn(super::app::serve(listener, format!("{color}-{i}"), misbehave));
        }
        fleets.push((color.into(), addrs));
    }
    let text = demo_config::text(args.listen, args.admin, &fleets[0].1, &fleets[1].1);
    let path = dir.join("switchyard.toml");
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("cannot write the demo config in {}: {e}", dir.display());
        return ExitCode::from(super::IO_FAILURE);
    }
    let config = match switchyard_config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(super::INVALID);
        }
    };
    let opts =
        super::serve::Options { watch: false, reset_state: true, access_log: switchyard_proxy::AccessLog::off() };
    let code = super::serve::serve(config, opts, |b| {
        print_help(b.proxy, b.admin, &path, args);
        demo_traffic::spawn(b.proxy, args.traffic);
    })
    .await;
    if code == ExitCode::from(super::IO_FAILURE) {
        eprintln!("(pick other ports with --listen ADDR and --admin ADDR)");
    }
    code
}

fn print_help(proxy: SocketAddr, admin: SocketAddr, config: &std::path::Path, args: &DemoArgs) {
    let ctl = if admin.to_string() == "127.0.0.1:9901" {
        "switchyard ctl".to_owned()
    } else {
        format!("switchyard ctl --admin http://{admin}")
    };
    println!(
        "\nswitchyard demo is running.
  proxy:  http://{proxy}   (blue-1, blue-2 are live; green-1, green-2 are next)
  admin:  http://{admin}
  dashboard: http://{admin}/ui   (open it in a browser: pools, health, rollouts, rollback)
  config: {}

Try it (from another terminal; `cargo run -q --` stands in for `switchyard` when not installed):
  curl -s http://{proxy}/                      # blue-1 or blue-2
  {ctl} status
  {ctl} weights demo blue=90 green=10          # canary: ~1 in 10 requests to green
  for i in $(seq 20); do curl -s http://{proxy}/; done | sort | uniq -c
  {ctl} switch demo green                      # cutover: every next request goes to green
  {ctl} rollback demo                          # back to the 90/10 split
  {ctl} history demo
  curl -s http://{admin}/v1/services/demo      # the same, as JSON
{}
Stop with Ctrl-C (in-flight requests finish first).",
        config.display(),
        rollout_help(&ctl, args)
    );
}

/// The rollout part of the help: what to run, and what the flags set up.
fn rollout_help(ctl: &str, args: &DemoArgs) -> String {
    let ladder = "10% -> 50% -> 100%, 10s a step";
    let traffic = if args.traffic > 0 {
        format!("{} requests/s of demo traffic are running", args.traffic)
    } else {
        "none yet: restart the demo with --traffic 100, or send your own".to_owned()
    };
    let mut green = Vec::new();
    if args.green_fail_rate > 0.0 {
        green.push(format!("answers 500 to {}% of requests", (args.green_fail_rate * 10_000.0).round() / 100.0));
    }
    if !args.green_latency.is_zero() {
        green.push(format!("waits {} before answering", switchyard_config::format_duration(args.green_latency)));
    }
    let expect = if green.is_empty() {
        "expect it to be promoted".to_owned()
    } else {
        format!("green {}: expect an automatic rollback", green.join(" and "))
    };
    let line = |cmd: String, comment: &str| format!("  {ctl} {cmd:<38} # {comment}\n");
    [
        format!("\nProgressive rollout, judged on live traffic ({traffic}; {expect}):\n"),
        line(format!("rollout start {SERVICE} green --wait"), ladder),
        line(format!("rollout status {SERVICE}"), "step ladder, canary vs baseline, checks"),
        line(format!("rollout pause {SERVICE}"), "also: resume, abort, promote"),
        line(format!("history {SERVICE}"), "every step, with the figures"),
    ]
    .concat()
}
