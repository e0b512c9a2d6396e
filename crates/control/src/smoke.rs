//! A rollout's smoke requests (SPEC §9): each one sent to every backend of the
//! canary pool, in the pool's protocol, before the first step. Any miss refuses
//! the start, naming the backend, the path and what came back.

use crate::command::SmokePlan;
use crate::health::fetch_status;

/// `Err` names every backend that failed a smoke request.
pub(crate) async fn run(plan: &SmokePlan) -> Result<(), String> {
    let mut failures = Vec::new();
    for smoke in &plan.smoke {
        for address in &plan.backends {
            let host = plan.host.as_deref().unwrap_or(address);
            let got = match tokio::time::timeout(plan.timeout, fetch_status(address, plan.protocol, host, &smoke.path))
                .await
            {
                Err(_) => Err(format!("no answer within {}", switchyard_config::format_duration(plan.timeout))),
                Ok(r) => r,
            };
            match got {
                Ok(status) if status.as_u16() == smoke.status => {}
                Ok(status) => failures.push(format!(
                    "backend {address}: GET {} answered {}, expected {}",
                    smoke.path,
                    status.as_u16(),
                    smoke.status
                )),
                Err(e) => failures.push(format!("backend {address}: GET {}: {e}", smoke.path)),
            }
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(format!("smoke requests failed: {}", failures.join("; "))) }
}
