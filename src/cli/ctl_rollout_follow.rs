//! `rollout start --wait` and `rollout status --watch`: poll the rollout every
//! second and show its progress until it ends. On a terminal one line is redrawn;
//! otherwise (CI logs) a plain line is printed only when something changed; with
//! `--json`, the rollout object as one line whenever it changed. Exit 0 when
//! promoted, 1 when it ends any other way or is paused (a paused rollout waits
//! for a person; CI must not hang on it), 3 when the admin API cannot be reached.

use super::ctl_http::Admin;
use super::ctl_rollout_print::progress_line;
use http::Method;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// How often the rollout is read.
const POLL: Duration = Duration::from_secs(1);
/// Failed polls in a row (a proxy restarting) before giving up with exit 3.
const UNREACHABLE_POLLS: u32 = 5;

/// How a rollout in this phase ends the wait, if it does.
fn outcome(phase: &str) -> Option<ExitCode> {
    match phase {
        "promoted" => Some(ExitCode::SUCCESS),
        "rolled_back" | "aborted" | "cancelled" | "paused" => Some(ExitCode::from(super::INVALID)),
        _ => None,
    }
}

/// Where the progress goes.
struct Screen {
    tty: bool,
    json: bool,
    /// The last line shown, without its countdown (or the last JSON).
    last: String,
    /// A redrawn line is on screen and needs a newline before anything else.
    open: bool,
}

impl Screen {
    fn show(&mut self, r: &Value) {
        let key = if self.json { r.to_string() } else { progress_line(r, None) };
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[2K{}", progress_line(r, Some(SystemTime::now())));
            let _ = out.flush();
            self.open = true;
        } else if key != self.last {
            let line = if self.json { key.clone() } else { progress_line(r, Some(SystemTime::now())) };
            let _ = writeln!(out, "{line}");
        }
        self.last = key;
    }

    fn end_line(&mut self) {
        if self.open {
            println!();
            self.open = false;
        }
    }
}

/// Follows SERVICE's rollout (the one numbered `id`, when given) until it ends.
pub async fn follow(admin: &Admin, service: &str, id: Option<&str>, json: bool) -> ExitCode {
    let path = format!("/v1/services/{service}/rollout");
    let mut screen = Screen { tty: !json && std::io::stdout().is_terminal(), json, last: String::new(), open: false };
    let mut failures = 0;
    loop {
        match admin.call(Method::GET, &path, None).await {
            Err(e) => {
                failures += 1;
                if failures >= UNREACHABLE_POLLS {
                    screen.end_line();
                    return admin.unreachable(&e);
                }
            }
            Ok((status, v)) if !status.is_success() => {
                screen.end_line();
                return admin.refused(status, &v);
            }
            Ok((_, r)) => {
                failures = 0;
                if let Some(id) = id
                    && r["id"].as_str().is_some_and(|now| now != id)
                {
                    screen.end_line();
                    eprintln!("rollout {id} was replaced by rollout {}", r["id"].as_str().unwrap_or("?"));
                    return ExitCode::from(super::INVALID);
                }
                screen.show(&r);
                let phase = r["phase"].as_str().unwrap_or_default();
                if let Some(code) = outcome(phase) {
                    screen.end_line();
                    let message = r["message"].as_str().unwrap_or_default();
                    if code == ExitCode::SUCCESS {
                        if !json {
                            println!("promoted: {message}");
                        }
                    } else {
                        eprintln!("rollout {phase}: {message}");
                    }
                    return code;
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_promotion_succeeds_and_a_pause_ends_the_wait_too() {
        assert_eq!(outcome("promoted"), Some(ExitCode::SUCCESS));
        for phase in ["rolled_back", "aborted", "cancelled", "paused"] {
            assert_eq!(outcome(phase), Some(ExitCode::from(1)), "{phase}");
        }
        assert_eq!(outcome("progressing"), None);
    }
}
