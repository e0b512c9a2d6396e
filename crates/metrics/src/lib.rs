//! switchyard-metrics owns every metric name (SPEC §6), their descriptions and
//! buckets, the Prometheus recorder, and the handles the hot path uses.
//!
//! Adding a metric: add its name to `names`, describe it in `describe()`, add a
//! setter here (or a field of `PoolMetrics` if the request path records it), and
//! list it in the README's metrics table. Labels are service, pool, status class,
//! kind and backend — never a raw path or anything a client controls.
//!
//! Depends on nothing of switchyard's; proxy, control and admin depend on it.

mod cluster;
mod handles;
mod live;
mod table_gauges;

pub use cluster::{cluster_connected, cluster_error, cluster_synced};
pub use handles::{LazyPoolMetrics, PoolMetrics, StatusCounters};
pub use live::Live;
pub use metrics_exporter_prometheus::PrometheusHandle;
pub use table_gauges::TableGauges;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Every metric name, in one place.
pub mod names {
    /// Responses sent by the listener, by service, pool and status class.
    pub const REQUESTS: &str = "switchyard_requests_total";
    /// Time from request received to last response byte, by service and pool.
    pub const DURATION: &str = "switchyard_request_duration_seconds";
    /// Failed exchanges with a backend, by service, pool and kind.
    pub const UPSTREAM_ERRORS: &str = "switchyard_upstream_errors_total";
    /// Requests in flight, by service and pool.
    pub const INFLIGHT: &str = "switchyard_inflight_requests";
    /// A pool's share of traffic, 0–100.
    pub const POOL_WEIGHT: &str = "switchyard_pool_weight";
    /// 1 when a backend may receive traffic.
    pub const BACKEND_HEALTHY: &str = "switchyard_backend_healthy";
    /// Traffic changes by service and kind.
    pub const TRAFFIC_CHANGES: &str = "switchyard_traffic_changes_total";
    /// Config reloads by result.
    pub const RELOADS: &str = "switchyard_config_reloads_total";
    /// The config generation in force.
    pub const GENERATION: &str = "switchyard_config_generation";
    /// When a service's traffic last changed (Unix seconds).
    pub const LAST_CHANGE: &str = "switchyard_last_change_timestamp_seconds";
    /// Preview tokens ignored as invalid, expired or for another service.
    pub const PREVIEW_REJECTED: &str = "switchyard_preview_tokens_rejected_total";
    /// Access log lines dropped because the writer fell behind.
    pub const ACCESS_LOG_DROPPED: &str = "switchyard_access_log_dropped_total";
    /// Requests sent to a backend again, by service, pool and reason.
    pub const UPSTREAM_RETRIES: &str = "switchyard_upstream_retries_total";
    /// Open client connections, by listener (`http`, `https`).
    pub const CLIENT_CONNECTIONS: &str = "switchyard_client_connections";
    /// Index of a service's current rollout step; -1 when none runs.
    pub const ROLLOUT_STEP: &str = "switchyard_rollout_step";
    /// The canary's weight in a service's running rollout (0 when none runs).
    pub const ROLLOUT_CANARY_WEIGHT: &str = "switchyard_rollout_canary_weight";
    /// The latest analysis of a running rollout: each check's value and limit.
    pub const ROLLOUT_ANALYSIS: &str = "switchyard_rollout_analysis";
    /// Rollouts that ended, by result.
    pub const ROLLOUTS: &str = "switchyard_rollouts_total";
    /// gauge, cluster mode only: 1 while the store answers
    pub const CLUSTER_CONNECTED: &str = "switchyard_cluster_connected";
    /// gauge: when this replica last read the store whole or applied a watch event
    pub const CLUSTER_LAST_SYNC: &str = "switchyard_cluster_last_sync_timestamp_seconds";
    /// counter{kind}
    pub const CLUSTER_ERRORS: &str = "switchyard_cluster_errors_total";
}

/// HTTP latency buckets: 0.5 ms to 30 s.
pub const DURATION_BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];

/// Installs the global Prometheus recorder. Call once, before the first table is
/// built, so the handles the table resolves are live.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::DURATION.into()), &DURATION_BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe();
    Ok(handle)
}

fn describe() {
    use names::*;
    describe_counter!(REQUESTS, "Responses sent by the listener, by service, pool and status class (code).");
    describe_histogram!(DURATION, Unit::Seconds, "Time from request received to the last response byte.");
    describe_counter!(UPSTREAM_ERRORS, "Failed exchanges with a backend, by kind (connect, timeout, reset).");
    describe_counter!(TRAFFIC_CHANGES, "Traffic changes by kind (switch, weights, rollback, config, ...).");
    describe_counter!(RELOADS, "Config reloads by result (ok, error).");
    describe_gauge!(GENERATION, "The config generation in force.");
    describe_gauge!(LAST_CHANGE, Unit::Seconds, "Unix time of the service's latest traffic change.");
    describe_counter!(PREVIEW_REJECTED, "Requests whose preview token was invalid, expired or for another service.");
    describe_counter!(ACCESS_LOG_DROPPED, "Access log lines dropped because the writer fell behind.");
    describe_counter!(
        UPSTREAM_RETRIES,
        "Requests sent again, by reason (connect: refused, tried on another backend; reused_closed: a reused keep-alive connection closed unanswered, sent on a fresh one)."
    );
    describe_gauge!(CLIENT_CONNECTIONS, "Open client connections, by listener (http, https).");
    describe_gauge!(ROLLOUT_STEP, "Index of the service's current rollout step; -1 when none runs.");
    describe_gauge!(
        ROLLOUT_CANARY_WEIGHT,
        "The canary's weight (0 to 100) in the service's running rollout; 0 when none runs."
    );
    describe_gauge!(
        ROLLOUT_ANALYSIS,
        "The latest rollout analysis: each check's value and limit (error_rate and error_increase as fractions, p99 in seconds, latency_ratio as a ratio)."
    );
    describe_counter!(ROLLOUTS, "Rollouts that ended, by result (promoted, auto_rollback, aborted, cancelled).");
    describe_gauge!(CLUSTER_CONNECTED, "1 while the cluster store (etcd) answers; cluster mode only.");
    describe_gauge!(
        CLUSTER_LAST_SYNC,
        "When this replica last read the cluster store or applied a change from it (Unix seconds)."
    );
    describe_counter!(
        CLUSTER_ERRORS,
        "Cluster store problems by kind (unreadable_value, watch, commit, connect, lease)."
    );
}

/// A service's rollout step (-1 when none runs) and canary weight (0 when none runs).
pub fn rollout_progress(service: &str, step: i64, canary_weight: f64) {
    // Step indices are tiny.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(names::ROLLOUT_STEP, "service" => service.to_owned()).set(step as f64);
    metrics::gauge!(names::ROLLOUT_CANARY_WEIGHT, "service" => service.to_owned()).set(canary_weight);
}

/// One check of a rollout's latest analysis: its value and its limit.
pub fn rollout_analysis(service: &str, check: &str, value: f64, limit: f64) {
    let g = |side: &'static str| metrics::gauge!(names::ROLLOUT_ANALYSIS, "service" => service.to_owned(), "check" => check.to_owned(), "side" => side);
    g("value").set(value);
    g("limit").set(limit);
}

/// Counts a rollout that ended (`promoted`, `auto_rollback`, `aborted`, `cancelled`).
pub fn rollout_ended(service: &str, result: &'static str) {
    metrics::counter!(names::ROLLOUTS, "service" => service.to_owned(), "result" => result).increment(1);
}

/// Counts a traffic change and stamps the service's last-change time.
pub fn traffic_change(service: &str, kind: &'static str, unix_seconds: f64) {
    metrics::counter!(names::TRAFFIC_CHANGES, "service" => service.to_owned(), "kind" => kind).increment(1);
    last_change(service, unix_seconds);
}

/// Sets a service's last-change time (Unix seconds) without counting a change.
pub fn last_change(service: &str, unix_seconds: f64) {
    metrics::gauge!(names::LAST_CHANGE, "service" => service.to_owned()).set(unix_seconds);
}

/// Counts a reload attempt.
pub fn reload(ok: bool) {
    metrics::counter!(names::RELOADS, "result" => if ok { "ok" } else { "error" }).increment(1);
}

/// Sets the config generation gauge.
pub fn generation(generation: u64) {
    // Generations stay far below 2^53.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(names::GENERATION).set(generation as f64);
}

/// The preview-token rejection counter of a service (resolved once per table).
pub fn preview_rejected(service: &str) -> metrics::Counter {
    metrics::counter!(names::PREVIEW_REJECTED, "service" => service.to_owned())
}

/// Counts a dropped access log line.
pub fn access_log_dropped() {
    metrics::counter!(names::ACCESS_LOG_DROPPED).increment(1);
}

/// The open-connections gauge of a listener (`http` or `https`), resolved once per
/// listener loop; each connection increments it when accepted and decrements it when closed.
pub fn client_connections(listener: &'static str) -> metrics::Gauge {
    metrics::gauge!(names::CLIENT_CONNECTIONS, "listener" => listener)
}
