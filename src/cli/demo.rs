//! `switchyard demo`: a blue fleet and a green fleet (two apps each) in this process,
//! the proxy and the admin API in front, a throwaway state file, and the commands
//! to try printed on stdout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
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
    for color in ["blue", "green"] {
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
            tokio::spawn(super::app::serve(listener, format!("{color}-{i}")));
        }
        fleets.push((color.into(), addrs));
    }
    let quoted = |v: &[String]| v.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    let text = format!(
        "# switchyard demo config (generated)\n[listener]\naddress = \"{}\"\n\n[admin]\naddress = \"{}\"\n\n[state]\nfile = \"state.json\"\n\n[[service]]\nname = \"demo\"\n\n[service.traffic]\nactive = \"blue\"\n\n[service.pools.blue]\nbackends = [{}]\n\n[service.pools.green]\nbackends = [{}]\n",
        args.listen,
        args.admin,
        quoted(&fleets[0].1),
        quoted(&fleets[1].1)
    );
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
    let code = super::serve::serve(config, opts, |b| print_help(b.proxy, b.admin, &path)).await;
    if code == ExitCode::from(super::IO_FAILURE) {
        eprintln!("(pick other ports with --listen ADDR and --admin ADDR)");
    }
    code
}

fn print_help(proxy: SocketAddr, admin: SocketAddr, config: &std::path::Path) {
    let ctl = if admin.to_string() == "127.0.0.1:9901" {
        "switchyard ctl".to_owned()
    } else {
        format!("switchyard ctl --admin http://{admin}")
    };
    println!(
        "\nswitchyard demo is running.
  proxy:  http://{proxy}   (blue-1, blue-2 are live; green-1, green-2 are next)
  admin:  http://{admin}
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

Stop with Ctrl-C (in-flight requests finish first).",
        config.display()
    );
}
