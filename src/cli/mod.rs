//! The subcommands (SPEC §1).

mod app;
mod check;
mod ctl;
mod ctl_fmt;
mod ctl_http;
mod ctl_print;
mod ctl_rollout;
mod ctl_rollout_follow;
mod ctl_rollout_print;
mod ctl_set;
mod ctl_status;
mod demo;
mod demo_config;
mod demo_traffic;
mod log_writer;
mod serve;
mod signals;
mod watch;
mod workers;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Layer-7 reverse proxy for blue/green and canary releases.
#[derive(Parser)]
#[command(name = "switchyard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve(serve::ServeArgs),
    /// Validate a config file, like `nginx -t`.
    Check {
        /// The config file.
        #[arg(short, long, default_value = "config/switchyard.toml")]
        config: PathBuf,
    },
    /// Zero-setup demo: a blue and a green fleet behind the proxy.
    Demo(demo::DemoArgs),
    /// A small HTTP app that answers with its name (the demo's fleets).
    App(app::AppArgs),
    /// Client for the admin API.
    Ctl(ctl::CtlArgs),
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> ExitCode {
    let code = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Check { config } => check::run(&config),
        Command::Demo(args) => demo::run(args),
        Command::App(args) => app::run(args),
        Command::Ctl(args) => ctl::run(args),
    };
    // The last lines (why it stopped) are written before the process exits.
    log_writer::flush(std::time::Duration::from_secs(2));
    code
}

/// Exit code 1: invalid config or refused operation.
pub(crate) const INVALID: u8 = 1;
/// Exit code 2: usage error (what clap exits with too).
pub(crate) const USAGE: u8 = 2;
/// Exit code 3: cannot bind, or an I/O failure at start.
pub(crate) const IO_FAILURE: u8 = 3;

/// Logs to stderr (from a thread of its own, `log_writer`); `RUST_LOG` overrides the level.
pub(crate) fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let writer = log_writer::Stderr::start();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// A multi-threaded tokio runtime with `workers` threads (default: one per core).
pub(crate) fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.build()
}
