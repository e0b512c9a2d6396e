//! Gauges that mirror the live routing table — each pool's in-flight count and
//! weight, each backend's health — written at scrape time straight from it rather
//! than kept in the recorder: a recorder series costs ~400 bytes for as long as the
//! process lives, which across 50,000 services is tens of megabytes that only
//! repeat what the table already holds.

use crate::names;
use std::fmt::Write;

/// The three families, filled pool by pool, then appended to an exposition.
#[derive(Default)]
pub struct TableGauges {
    inflight: String,
    weight: String,
    healthy: String,
}

impl TableGauges {
    /// One pool: requests in flight and weight (0–100).
    pub fn pool(&mut self, service: &str, pool: &str, inflight: u64, weight_percent: f64) {
        let labels = format!("service=\"{}\",pool=\"{}\"", escape(service), escape(pool));
        let _ = writeln!(self.inflight, "{}{{{labels}}} {inflight}", names::INFLIGHT);
        let _ = writeln!(self.weight, "{}{{{labels}}} {weight_percent}", names::POOL_WEIGHT);
    }

    /// One backend of a pool: 1 when it may receive traffic.
    pub fn backend(&mut self, service: &str, pool: &str, backend: &str, healthy: bool) {
        let _ = writeln!(
            self.healthy,
            "{}{{service=\"{}\",pool=\"{}\",backend=\"{}\"}} {}",
            names::BACKEND_HEALTHY,
            escape(service),
            escape(pool),
            escape(backend),
            u8::from(healthy)
        );
    }

    /// Appends the families (with their HELP and TYPE lines) to `out`.
    pub fn write_to(self, out: &mut String) {
        for (name, help, lines) in [
            (names::INFLIGHT, "Requests in flight, response bodies included.", self.inflight),
            (names::POOL_WEIGHT, "The pool's share of traffic, 0 to 100.", self.weight),
            (
                names::BACKEND_HEALTHY,
                "1 when the backend may receive traffic, 0 when a check or ejection says not.",
                self.healthy,
            ),
        ] {
            if !lines.is_empty() {
                let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{lines}");
            }
        }
    }
}

/// A label value as the text format wants it.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains(['\\', '"', '\n']) {
        v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
    } else {
        v.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_come_whole_with_help_and_type() {
        let mut g = TableGauges::default();
        g.pool("shop", "blue", 3, 12.5);
        g.backend("shop", "blue", "10.0.0.1:80", true);
        g.pool("shop", "green", 0, 87.5);
        g.backend("shop", "green", "10.0.0.2:80", false);
        let mut out = String::new();
        g.write_to(&mut out);
        assert_eq!(
            out,
            "# HELP switchyard_inflight_requests Requests in flight, response bodies included.\n# TYPE switchyard_inflight_requests gauge\n\
             switchyard_inflight_requests{service=\"shop\",pool=\"blue\"} 3\nswitchyard_inflight_requests{service=\"shop\",pool=\"green\"} 0\n\
             # HELP switchyard_pool_weight The pool's share of traffic, 0 to 100.\n# TYPE switchyard_pool_weight gauge\n\
             switchyard_pool_weight{service=\"shop\",pool=\"blue\"} 12.5\nswitchyard_pool_weight{service=\"shop\",pool=\"green\"} 87.5\n\
             # HELP switchyard_backend_healthy 1 when the backend may receive traffic, 0 when a check or ejection says not.\n# TYPE switchyard_backend_healthy gauge\n\
             switchyard_backend_healthy{service=\"shop\",pool=\"blue\",backend=\"10.0.0.1:80\"} 1\nswitchyard_backend_healthy{service=\"shop\",pool=\"green\",backend=\"10.0.0.2:80\"} 0\n"
        );
        assert_eq!(escape("a\"b"), "a\\\"b");
    }
}
