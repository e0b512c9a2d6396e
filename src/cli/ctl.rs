//! `switchyard ctl`: the admin API from the command line. Exit 1 on any refusal
//! (the server's `error` printed), 3 when the admin API cannot be reached.

use super::ctl_http::{Admin, ChangeOpts, call};
use super::{ctl_print, ctl_rollout, ctl_status};
use http::Method;
use serde_json::{Value, json};
use std::process::ExitCode;

/// `ctl` options; the global ones may stand anywhere on the line.
#[derive(clap::Args)]
pub struct CtlArgs {
    /// Admin API base URL.
    #[arg(long, global = true, env = "SWITCHYARD_ADMIN", default_value = "http://127.0.0.1:9901")]
    admin: String,
    /// Bearer token.
    #[arg(long, global = true, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the admin API's own JSON answer.
    #[arg(long, global = true)]
    json: bool,
    /// Changes only: refuse unless the service is at this version (412 otherwise).
    #[arg(long, global = true, value_name = "VERSION")]
    if_match: Option<u64>,
    /// Changes only, cluster mode: answer once every replica applied the change,
    /// waiting up to this long (exit 1 if one did not, or rejected it).
    #[arg(long, global = true, value_name = "DURATION")]
    wait_replicas: Option<String>,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(clap::Subcommand)]
enum CtlCommand {
    /// Traffic, versions and pool health of one service or all.
    Status { service: Option<String> },
    /// Send 100 % of a service's traffic to one pool.
    Switch {
        service: String,
        pool: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Override the health gate.
        #[arg(long)]
        force: bool,
        /// After the switch, wait until the pools that lost their traffic have
        /// nothing in flight.
        #[arg(long)]
        wait_drained: bool,
        /// How long `--wait-drained` waits.
        #[arg(long, default_value = "5m")]
        drain_timeout: String,
    },
    /// Split traffic by weight: `weights shop blue=90 green=10`.
    Weights {
        service: String,
        #[arg(required = true, value_parser = parse_weight)]
        weights: Vec<(String, f64)>,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        force: bool,
    },
    /// Undo the latest traffic change not yet undone.
    Rollback {
        service: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        force: bool,
    },
    /// Traffic changes, newest first.
    History { service: String },
    /// In-flight requests and upgraded connections of a pool; with --wait, until it is empty.
    Drain {
        service: String,
        pool: String,
        /// Wait up to this long for the pool to drain (exit 1 if it does not).
        #[arg(long)]
        wait: Option<String>,
    },
    /// A token that sends its bearer to POOL whatever the weights.
    PreviewToken {
        service: String,
        pool: String,
        /// How long it is valid (1s to 30d).
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Re-read the config file (same as SIGHUP).
    Reload,
    /// Who the token is and what it may do (operator or viewer).
    Whoami,
    /// Cluster mode: the store and every replica, with the versions each applied.
    Cluster,
    /// Progressive rollouts: start one, follow it, steer it.
    Rollout {
        #[command(subcommand)]
        command: ctl_rollout::RolloutCommand,
    },
}

fn parse_weight(s: &str) -> Result<(String, f64), String> {
    let (pool, w) = s.split_once('=').ok_or_else(|| format!("expected POOL=WEIGHT, got \"{s}\""))?;
    let w: f64 = w.parse().map_err(|_| format!("weight of \"{pool}\" is not a number: \"{w}\""))?;
    Ok((pool.to_owned(), w))
}

/// Runs one ctl command.
pub fn run(args: CtlArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::from(super::IO_FAILURE);
        }
    };
    rt.block_on(ctl(args))
}

async fn ctl(args: CtlArgs) -> ExitCode {
    let change = ChangeOpts { if_match: args.if_match, wait_replicas: args.wait_replicas.clone() };
    let admin = Admin {
        base: args.admin.trim_end_matches('/').to_owned(),
        token: args.token.clone(),
        json: args.json,
        change: change.clone(),
    };
    let (method, path, body) = match &args.command {
        CtlCommand::Status { service } => return ctl_status::run(&admin, service.as_deref(), args.json).await,
        CtlCommand::Rollout { command } => return ctl_rollout::run(&admin, command, args.json).await,
        CtlCommand::Switch { service, pool, reason, force, .. } => (
            Method::POST,
            format!("/v1/services/{service}/switch"),
            Some(json!({"pool": pool, "reason": reason, "force": force})),
        ),
        CtlCommand::Weights { service, weights, reason, force } => {
            let w: serde_json::Map<String, Value> = weights.iter().map(|(p, w)| (p.clone(), json!(w))).collect();
            (
                Method::POST,
                format!("/v1/services/{service}/weights"),
                Some(json!({"weights": w, "reason": reason, "force": force})),
            )
        }
        CtlCommand::Rollback { service, reason, force } => {
            (Method::POST, format!("/v1/services/{service}/rollback"), Some(json!({"reason": reason, "force": force})))
        }
        CtlCommand::History { service } => (Method::GET, format!("/v1/services/{service}/history"), None),
        CtlCommand::Drain { service, pool, wait } => {
            let wait = wait.as_ref().map(|w| format!("&wait={w}")).unwrap_or_default();
            (Method::GET, format!("/v1/services/{service}/drain?pool={pool}{wait}"), None)
        }
        CtlCommand::PreviewToken { service, pool, ttl } => {
            (Method::POST, format!("/v1/services/{service}/preview-token"), Some(json!({"pool": pool, "ttl": ttl})))
        }
        CtlCommand::Reload => (Method::POST, "/v1/reload".to_owned(), Some(json!({}))),
        CtlCommand::Whoami => (Method::GET, "/v1/whoami".to_owned(), None),
        CtlCommand::Cluster => (Method::GET, "/v1/cluster".to_owned(), None),
    };
    let base = args.admin.trim_end_matches('/');
    // Only changes of traffic carry --if-match and --wait-replicas.
    let change = match args.command {
        CtlCommand::PreviewToken { .. } | CtlCommand::Reload => ChangeOpts::default(),
        _ => change,
    };
    let (status, value) = match call(base, &args.token, &change, method, &path, body).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot reach the admin API at {base}: {e}");
            return ExitCode::from(super::IO_FAILURE);
        }
    };
    if let (CtlCommand::Drain { .. }, false) = (&args.command, args.json) {
        let (pool, inflight, upgraded) = (&value["pool"], &value["inflight"], &value["upgraded"]);
        if value["drained"].as_bool() == Some(true) {
            println!("pool {} drained: nothing in flight", pool.as_str().unwrap_or("?"));
        } else if status.is_success() || status == http::StatusCode::REQUEST_TIMEOUT {
            println!(
                "pool {}: {inflight} request(s) in flight, {upgraded} upgraded connection(s)",
                pool.as_str().unwrap_or("?")
            );
            if status == http::StatusCode::REQUEST_TIMEOUT {
                return ExitCode::from(super::INVALID);
            }
        }
        if status.is_success() || status == http::StatusCode::REQUEST_TIMEOUT {
            return ExitCode::SUCCESS;
        }
    }
    if !status.is_success() {
        return admin.refused(status, &value);
    }
    if status == http::StatusCode::ACCEPTED {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        return super::ctl_http::incomplete(&value);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if let CtlCommand::Switch { service, wait_drained: true, drain_timeout, .. } = &args.command {
        if !args.json {
            ctl_print::service(&value);
        }
        return wait_drained(base, &args.token, service, &value, drain_timeout).await;
    }
    match &args.command {
        CtlCommand::History { .. } => ctl_print::history(&value),
        CtlCommand::Cluster => ctl_print::cluster(&value),
        CtlCommand::Reload => {
            println!("reloaded: generation {}", value["generation"]);
            for w in value["warnings"].as_array().into_iter().flatten() {
                println!("warning: {}", w.as_str().unwrap_or_default());
            }
        }
        CtlCommand::Whoami => match value["actor"].as_str() {
            Some(actor) => println!("{actor} ({})", value["role"].as_str().unwrap_or("?")),
            None => println!("no token needed: anyone reaching the admin API is an operator"),
        },
        CtlCommand::PreviewToken { .. } => {
            let token = value["token"].as_str().unwrap_or_default();
            println!("{token}");
            eprintln!(
                "reaches pool {} until {}; send it as cookie sy_preview={token} or header x-switchyard-preview: {token}",
                value["pool"].as_str().unwrap_or("?"),
                value["expires_at"].as_str().unwrap_or("?")
            );
        }
        _ => ctl_print::service(&value),
    }
    ExitCode::SUCCESS
}

/// Waits on the drain endpoint for every pool the switch left with weight 0.
async fn wait_drained(base: &str, token: &Option<String>, service: &str, view: &Value, timeout: &str) -> ExitCode {
    let idle: Vec<String> = view["traffic"]
        .as_object()
        .map(|m| m.iter().filter(|(_, w)| w.as_f64() == Some(0.0)).map(|(p, _)| p.clone()).collect())
        .unwrap_or_default();
    let mut code = ExitCode::SUCCESS;
    for pool in idle {
        let path = format!("/v1/services/{service}/drain?pool={pool}&wait={timeout}");
        match call(base, token, &ChangeOpts::default(), Method::GET, &path, None).await {
            Ok((s, _)) if s.is_success() => println!("pool {pool} drained: nothing in flight"),
            Ok((s, v)) if s == http::StatusCode::REQUEST_TIMEOUT => {
                eprintln!("pool {pool} still has {} request(s) in flight after {timeout}", v["inflight"]);
                code = ExitCode::from(super::INVALID);
            }
            Ok((s, v)) => {
                eprintln!("error ({}): {}", s.as_u16(), v["error"].as_str().unwrap_or("(no message)"));
                code = ExitCode::from(super::INVALID);
            }
            Err(e) => {
                eprintln!("cannot reach the admin API at {base}: {e}");
                return ExitCode::from(super::IO_FAILURE);
            }
        }
    }
    code
}
