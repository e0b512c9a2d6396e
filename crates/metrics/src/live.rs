//! Series of pools and backends that a reload removed disappear from `/metrics`
//! (SPEC §6). The recorder cannot forget a series, so the exposition is filtered
//! at scrape time against what the live routing table holds.

use std::collections::{HashMap, HashSet};

/// The services, pools and backends that exist now.
#[derive(Default)]
pub struct Live {
    services: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl Live {
    /// Records a pool of a service with its backends (`host:port`).
    pub fn add<'a>(&mut self, service: &str, pool: &str, backends: impl IntoIterator<Item = &'a str>) {
        let pools = self.services.entry(service.to_owned()).or_default();
        pools.entry(pool.to_owned()).or_default().extend(backends.into_iter().map(str::to_owned));
    }

    /// Whether a sample with these labels belongs to something that exists. Series
    /// without a service label, and the unrouted `service="-"`, always do.
    fn keeps(&self, service: Option<&str>, pool: Option<&str>, backend: Option<&str>) -> bool {
        let Some(service) = service.filter(|s| *s != "-") else { return true };
        let Some(pools) = self.services.get(service) else { return false };
        let Some(pool) = pool else { return true };
        let Some(backends) = pools.get(pool) else { return false };
        backend.is_none_or(|b| backends.contains(b))
    }

    /// The Prometheus text without the samples of removed services, pools and backends.
    pub fn filter(&self, exposition: &str) -> String {
        let mut out = String::with_capacity(exposition.len());
        for line in exposition.lines() {
            let keep = line.starts_with('#')
                || labels(line).is_none_or(|l| self.keeps(label(l, "service"), label(l, "pool"), label(l, "backend")));
            if keep {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// The text between `{` and `}` of a sample line.
fn labels(line: &str) -> Option<&str> {
    let open = line.find('{')?;
    let close = line[open..].find('}')? + open;
    Some(&line[open + 1..close])
}

/// The value of one label (names and addresses never hold quotes or commas).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| kv.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_pools_backends_and_services_are_dropped() {
        let mut live = Live::default();
        live.add("shop", "blue", ["127.0.0.1:1"]);
        let text = "# TYPE x counter\nx{service=\"shop\",pool=\"blue\",code=\"2xx\"} 1\nx{service=\"shop\",pool=\"red\",code=\"2xx\"} 1\n\
                    h{service=\"shop\",pool=\"blue\",backend=\"127.0.0.1:2\"} 0\nh{service=\"shop\",pool=\"blue\",backend=\"127.0.0.1:1\"} 1\n\
                    c{service=\"gone\",kind=\"switch\"} 3\nc{service=\"shop\",kind=\"switch\"} 2\nx{service=\"-\",pool=\"-\",code=\"4xx\"} 5\ng 7\n";
        assert_eq!(
            live.filter(text),
            "# TYPE x counter\nx{service=\"shop\",pool=\"blue\",code=\"2xx\"} 1\nh{service=\"shop\",pool=\"blue\",backend=\"127.0.0.1:1\"} 1\n\
             c{service=\"shop\",kind=\"switch\"} 2\nx{service=\"-\",pool=\"-\",code=\"4xx\"} 5\ng 7\n"
        );
    }
}
