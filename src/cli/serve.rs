//! `switchyard serve`: wire config, control, admin and proxy together and run
//! until SIGTERM/SIGINT.

use super::{INVALID, IO_FAILURE, signals, watch, workers};
use anyhow::Context;
use arc_swap::ArcSwap;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use switchyard_admin::{AdminState, Tokens};
use switchyard_config::Config;
use switchyard_control::Controller;
use switchyard_proxy::tls::TlsSettings;
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
    // Admin, health checks and signals; the proxy's traffic runs on its own workers.
    let rt = match super::runtime(Some(1)) {
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
    // First: a SIGTERM or SIGHUP during start-up must not kill the process.
    let signals = match signals::Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot install signal handlers: {e}");
            return ExitCode::from(IO_FAILURE);
        }
    };
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
    // Held until the process ends: one switchyard per state file.
    let _state_lock = match switchyard_control::lock_state(&config.state.file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(IO_FAILURE);
        }
    };
    let (mut controller, router) = match Controller::start(config, opts.reset_state) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(INVALID);
        }
    };
    // One copy of the config (it is big with many services): the controller's.
    let config = controller.config().clone();
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
    // As `Tokens::load` reads it: a blank variable is no token.
    controller.set_admin(bound.admin, env_token.as_deref().is_some_and(|t| !t.trim().is_empty()));
    // Cluster mode: changes go through etcd from the first one; the apply loop
    // starts once the control task runs (serving from the state file meanwhile).
    let cluster = config.cluster.as_ref().map(|c| {
        let name = switchyard_cluster::replica_name(c, bound.admin);
        (c, switchyard_cluster::Cluster::attach(c, name, &mut controller))
    });

    // This runtime serves no proxy traffic: a switch is applied on the admin thread
    // that took the call, without waking the control thread.
    let control = switchyard_control::spawn(controller).inline();
    let cluster = cluster.map(|(c, cluster)| cluster.run(c, bound.admin, control.clone()));
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
        cluster,
    });
    let stop = signals::Stop::new();
    let terminate = signals.reload_on_sighup(control.clone());
    if opts.watch {
        watch::spawn_watch(&config.source, control.clone());
    }
    let admin_task = tokio::spawn(switchyard_admin::serve(admin_listener, admin, env_token, stop.wait()));
    let server_opts = ServerOptions { access_log: opts.access_log, ..ServerOptions::from_listener(&config.listener) };
    let tls_addr =
        tls_listener.as_ref().and_then(|l| l.local_addr().ok()).map_or_else(|| "-".to_owned(), |a| a.to_string());
    let listeners = match to_std(proxy_listener, tls_listener.zip(tls)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot hand the listeners to the workers: {e}");
            return ExitCode::from(IO_FAILURE);
        }
    };
    let workers = workers::count(config.runtime.worker_threads);
    let proxy = match workers::start(workers, &listeners, &router, &server_opts, &stop) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("cannot start the proxy workers: {e}");
            return ExitCode::from(IO_FAILURE);
        }
    };
    // The workers hold duplicates; these copies would only keep the ports open.
    drop(listeners);
    // Announced only once signal handlers and the watcher are in place.
    tracing::info!(proxy = %bound.proxy, admin = %bound.admin, tls = %tls_addr, workers, config = %config.source.display(), "switchyard listening");
    on_ready(&bound);
    terminate.wait().await;
    tracing::info!(timeout = ?config.runtime.shutdown_timeout, "shutting down: no new connections, finishing in-flight requests");
    stop.trigger();
    finish(proxy, config.runtime.shutdown_timeout).await;
    admin_task.abort();
    ExitCode::SUCCESS
}

/// Listeners handed from this runtime to the workers' own runtimes.
fn to_std(proxy: TcpListener, tls: Option<(TcpListener, TlsSettings)>) -> std::io::Result<workers::Listeners> {
    let tls = match tls {
        Some((l, settings)) => Some((l.into_std()?, settings)),
        None => None,
    };
    Ok(workers::Listeners { plain: proxy.into_std()?, tls })
}

async fn finish(proxy: impl Future<Output = ()>, timeout: Duration) {
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
