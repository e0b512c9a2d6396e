//! `ctl rollout start|status|pause|resume|abort|promote` (SPEC §9).

use super::ctl_http::{Admin, Answer};
use super::ctl_set::{self, Setting};
use super::{ctl_print, ctl_rollout_follow, ctl_rollout_print};
use http::Method;
use serde_json::{Map, Value, json};
use std::process::ExitCode;

/// The rollout subcommands.
#[derive(clap::Subcommand)]
pub enum RolloutCommand {
    /// Move SERVICE's traffic to POOL step by step, judged on live traffic; promoted
    /// when every step passes, rolled back automatically when one fails.
    Start(StartArgs),
    /// The running (or the last) rollout of SERVICE.
    Status {
        service: String,
        /// Follow it until it ends: exit 0 when promoted, 1 when it ends any other
        /// way or is paused.
        #[arg(long)]
        watch: bool,
    },
    /// Freeze the weights (analysis and automatic rollback keep running).
    Pause(ControlArgs),
    /// Go on after a pause; the current step's clock and window start again.
    Resume(ControlArgs),
    /// Return to the traffic from before the rollout.
    Abort(ControlArgs),
    /// Send 100 % to the canary now.
    Promote(ControlArgs),
}

/// `rollout start` options; unset settings come from `[service.rollout]`.
#[derive(clap::Args)]
pub struct StartArgs {
    service: String,
    /// The canary pool.
    pool: String,
    /// Canary weights, ascending, the last 100: `--steps 5,25,50,100`.
    #[arg(long, value_parser = parse_steps)]
    steps: Option<Value>,
    /// Least time on a step before it may advance, e.g. `1m`.
    #[arg(long, value_parser = parse_duration_text)]
    step_interval: Option<String>,
    /// Any rollout setting, `analysis.` prefixed for the analysis ones:
    /// `--set analysis.max_error_rate=0.02 --set warmup=10s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = ctl_set::parse)]
    set: Vec<Setting>,
    #[arg(long, default_value = "")]
    reason: String,
    /// Follow the rollout until it ends: exit 0 when promoted, 1 when it ends any
    /// other way or is paused (a CI deploy step).
    #[arg(long)]
    wait: bool,
}

/// `pause`, `resume`, `abort`, `promote` options.
#[derive(clap::Args)]
pub struct ControlArgs {
    service: String,
    #[arg(long, default_value = "")]
    reason: String,
}

/// `--steps`: numbers separated by commas.
fn parse_steps(s: &str) -> Result<Value, String> {
    match ctl_set::to_json(s.trim()) {
        n @ Value::Number(_) => Ok(json!([n])),
        a @ Value::Array(_) if !s.trim().starts_with('[') => Ok(a),
        _ => Err(format!("expected weights separated by commas (e.g. 5,25,50,100), got \"{s}\"")),
    }
}

/// A duration flag: checked here, sent as written.
fn parse_duration_text(s: &str) -> Result<String, String> {
    switchyard_config::parse_duration(s).map(|_| s.trim().to_owned())
}

/// Runs one rollout command.
pub async fn run(admin: &Admin, command: &RolloutCommand, json: bool) -> ExitCode {
    match command {
        RolloutCommand::Start(a) => start(admin, a, json).await,
        RolloutCommand::Status { service, watch: true } => ctl_rollout_follow::follow(admin, service, None, json).await,
        RolloutCommand::Status { service, watch: false } => status(admin, service, json).await,
        RolloutCommand::Pause(c) => control(admin, "pause", c, json).await,
        RolloutCommand::Resume(c) => control(admin, "resume", c, json).await,
        RolloutCommand::Abort(c) => control(admin, "abort", c, json).await,
        RolloutCommand::Promote(c) => control(admin, "promote", c, json).await,
    }
}

/// The start call's body: the settings nested as in the file, then pool and reason.
fn start_body(a: &StartArgs) -> Result<Value, String> {
    let mut body = Map::new();
    for (path, value) in &a.set {
        ctl_set::merge(&mut body, path, value.clone())?;
    }
    if let Some(steps) = &a.steps {
        body.insert("steps".into(), steps.clone());
    }
    if let Some(i) = &a.step_interval {
        body.insert("step_interval".into(), json!(i));
    }
    body.insert("pool".into(), json!(a.pool));
    body.insert("reason".into(), json!(a.reason));
    Ok(Value::Object(body))
}

async fn start(admin: &Admin, a: &StartArgs, json: bool) -> ExitCode {
    let body = match start_body(a) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::USAGE);
        }
    };
    let path = format!("/v1/services/{}/rollout", a.service);
    let service = match admin.send(Method::POST, &path, Some(body)).await {
        Answer::Ok(v) => v,
        Answer::Done(code) => return code,
    };
    let rollout = &service["rollout"];
    if json {
        println!("{}", serde_json::to_string_pretty(&service).unwrap_or_default());
    } else {
        ctl_print::service(&service);
        println!(
            "rollout {} started: {} from {}, steps {}",
            rollout["id"].as_str().unwrap_or("?"),
            rollout["pool"].as_str().unwrap_or(&a.pool),
            rollout["baseline"].as_str().unwrap_or("?"),
            rollout["steps"]
                .as_array()
                .map(|s| s.iter().map(super::ctl_fmt::num).collect::<Vec<_>>().join(","))
                .unwrap_or_default()
        );
    }
    if !a.wait {
        return ExitCode::SUCCESS;
    }
    let id = rollout["id"].as_str().map(str::to_owned);
    ctl_rollout_follow::follow(admin, &a.service, id.as_deref(), json).await
}

async fn status(admin: &Admin, service: &str, json: bool) -> ExitCode {
    let r = match admin.get(&format!("/v1/services/{service}/rollout")).await {
        Answer::Ok(v) => v,
        Answer::Done(code) => return code,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        print!("{}", ctl_rollout_print::block(service, &r, std::time::SystemTime::now()));
    }
    ExitCode::SUCCESS
}

async fn control(admin: &Admin, action: &str, c: &ControlArgs, json: bool) -> ExitCode {
    let path = format!("/v1/services/{}/rollout/{action}", c.service);
    let service = match admin.send(Method::POST, &path, Some(json!({"reason": c.reason}))).await {
        Answer::Ok(v) => v,
        Answer::Done(code) => return code,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&service).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    ctl_print::service(&service);
    let r = &service["rollout"];
    if r.is_object() && !ctl_rollout_print::is_running(r) {
        println!("rollout {}: {}", r["phase"].as_str().unwrap_or("?"), r["message"].as_str().unwrap_or(""));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<StartArgs, String> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            start: StartArgs,
        }
        let line = ["start", "demo", "green"].iter().chain(extra);
        <Cli as clap::Parser>::try_parse_from(line).map(|c| c.start).map_err(|e| e.to_string())
    }

    #[test]
    fn flags_and_settings_make_one_nested_body() {
        let a = args(&[
            "--steps",
            "5,25,50,100",
            "--step-interval",
            "1m",
            "--set",
            "analysis.max_error_rate=0.02",
            "--set",
            "analysis.max_p99=800ms",
            "--set",
            "on_inconclusive=abort",
            "--reason",
            "release 42",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            start_body(&a),
            Ok(json!({
                "pool": "green", "reason": "release 42", "steps": [5, 25, 50, 100], "step_interval": "1m",
                "on_inconclusive": "abort", "analysis": {"max_error_rate": 0.02, "max_p99": "800ms"}
            }))
        );
    }

    #[test]
    fn the_flags_win_over_the_same_setting() {
        let a = args(&["--set", "steps=10,100", "--steps", "50,100"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(start_body(&a).map(|b| b["steps"].clone()), Ok(json!([50, 100])));
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in [&["--steps", "5,x"][..], &["--steps", "[5]"], &["--step-interval", "soon"], &["--set", "x"]] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        let a = args(&["--set", "analysis=1", "--set", "analysis.min_requests=5"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(start_body(&a).is_err());
    }
}
