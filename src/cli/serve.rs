//! `switchyard serve`: wire config, control, admin and proxy together and run
//! until SIGTERM/SIGINT.

use super::{INVALID, IO_FAILURE, signals};
use anyhow::Context;
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use switchyard_admin::{AdminState, Tokens};
use switchyard_config::Config;
use switchyard_control::Controller;
use switchyard_proxy::{AccessLog, ServerOptions};
use tokio::net::TcpListener;

/// `serve` options.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The config file.
    #[arg(short, long, default_value = "config/switchyard.toml")]
    pub config: PathBuf,
    /// Also reload when the config file changes.
    #[arg(long)]
    pub watch: bool,
    /// Start with empty runtime state, ignoring (and replacing) the state file.
    #[arg(long)]
    pub reset_state: bool,
    /// Log format, for logs (stderr) and the access log (stdout).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Access log: one line per request on stdout, or off.
    #[arg(long, value_enum, default_value = "stdout")]
    pub access_log: AccessLogTarget,
}

/// Where the access log goes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessLogTarget {
    /// One line per request on stdout.
    Stdout,
    /// No access log.
    Off,
}

/// What `serve` runs with beyond the config file.
pub struct Options {
    /// Reload on file change.
    pub watch: bool,
    /// Ignore the state file.
    pub reset_state: bool,
    /// Access log sink.
    pub access_log: AccessLog,
}

/// How logs are written.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Validates and runs.
pub fn run(args: ServeArgs) -> ExitCode {
    super::init_tracing(matches!(args.log_format, LogFormat::Json));
    let config = match switchyard_config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            for line in e.lines() {
                eprintln!("{line}");
            }
            return ExitCode::from(INVALID);
        }
    };
    let rt = match super::runtime(config.runtime.worker_threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(IO_FAILURE);
        }
    };
    let access_log = match (args.access_log, args.log_format) {
        (AccessLogTarget::Off, _) => AccessLog::off(),
        (AccessLogTarget::Stdout, LogFormat::Text) => AccessLog::stdout(switchyard_proxy::LogFormat::Text),
        (AccessLogTarget::Stdout, LogFormat::Json) => AccessLog::stdout(switchyard_proxy::LogFormat::Json),
    };
    let opts = Options { watch: args.watch, reset_state: args.reset_state, access_log };
    rt.block_on(serve(config, opts, |_| {}))
}

/// Addresses actually bound, for callers that print them (the demo).
pub struct Bound {
    /// The proxy listener.
    pub proxy: std::net::SocketAddr,
    /// The admin listener.
    pub admin: std::net::SocketAddr,
}

/// Runs a validated config until SIGTERM/SIGINT; `on_ready` sees the bound addresses.
pub async fn serve(config: Config, opts: Options, on_ready: impl FnOnce(&Bound)) -> ExitCode {
    // Before the first table is built, so the handles it resolves are live.
    let metrics = match switchyard_metrics::install() {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed; /metrics is off");
            None
        }
    };
    let env_token = std::env::var("SWITCHYARD_ADMIN_TOKEN").ok();
    let tokens = match Tokens::load(&config.admin, env_token.clone()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(INVALID);
        }
    };
    let (controller, router) = match Controller::start(config.clone(), opts.reset_state) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(INVALID);
        }
    };
    let tls = controller.tls();
    let tls_listener = match &config.listener.tls {
        None => None,
        Some(t) => match TcpListener::bind(t.address).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("cannot bind the TLS listener on {}: {e}", t.address);
                return ExitCode::from(IO_FAILURE);
            }
        },
    };
    let (proxy_listener, admin_listener) = match bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(IO_FAILURE);
        }
    };
    let bound = Bound {
        proxy: proxy_listener.local_addr().unwrap_or(config.listener.address),
        admin: admin_listener.local_addr().unwrap_or(config.admin.address),
    };

    let control = switchyard_control::spawn(controller);
    if let Some(h) = metrics.clone() {
        // Drains histogram buffers even when nobody scrapes.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                h.run_upkeep();
            }
        });
    }
    let admin = Arc::new(AdminState {
        control: control.clone(),
        tokens: ArcSwap::from_pointee(tokens),
        router: router.clone(),
        metrics,
    });
    let stop = signals::Stop::new();
    signals::spawn_reload_on_sighup(control.clone());
    if opts.watch {
        signals::spawn_watch(&config.source, control.clone());
    }
    let admin_task = tokio::spawn(switchyard_admin::serve(admin_listener, admin, env_token, stop.wait()));
    let server_opts = ServerOptions { access_log: opts.access_log, ..ServerOptions::from_listener(&config.listener) };
    let tls_addr =
        tls_listener.as_ref().and_then(|l| l.local_addr().ok()).map_or_else(|| "-".to_owned(), |a| a.to_string());
    let tls_task = match (tls_listener, tls) {
        (Some(l), Some(tls)) => {
            let task = switchyard_proxy::serve_tls(l, router.clone(), server_opts.clone(), tls, stop.wait());
            Some(tokio::spawn(task))
        }
        _ => None,
    };
    let proxy = tokio::spawn(switchyard_proxy::serve(proxy_listener, router, server_opts, stop.wait()));
    // Announced only once signal handlers and the watcher are in place.
    tracing::info!(proxy = %bound.proxy, admin = %bound.admin, tls = %tls_addr, config = %config.source.display(), "switchyard listening");
    on_ready(&bound);
    signals::wait_for_terminate().await;
    tracing::info!(timeout = ?config.runtime.shutdown_timeout, "shutting down: no new connections, finishing in-flight requests");
    stop.trigger();
    let listeners = async move {
        let _ = proxy.await;
        if let Some(t) = tls_task {
            let _ = t.await;
        }
    };
    finish(tokio::spawn(listeners), config.runtime.shutdown_timeout).await;
    admin_task.abort();
    ExitCode::SUCCESS
}

async fn finish(proxy: tokio::task::JoinHandle<()>, timeout: Duration) {
    match tokio::time::timeout(timeout, proxy).await {
        Ok(_) => tracing::info!("all in-flight requests finished"),
        Err(_) => tracing::warn!(?timeout, "shutdown_timeout passed with requests still in flight; closing them"),
    }
}

async fn bind(config: &Config) -> anyhow::Result<(TcpListener, TcpListener)> {
    let proxy = TcpListener::bind(config.listener.address)
        .await
        .with_context(|| format!("cannot bind the proxy listener on {}", config.listener.address))?;
    let admin = TcpListener::bind(config.admin.address)
        .await
        .with_context(|| format!("cannot bind the admin API on {}", config.admin.address))?;
    Ok((proxy, admin))
}
