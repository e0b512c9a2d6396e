//! Reloading a file of tens of thousands of services without parsing each one
//! again. The file is cut at every line that is exactly `[[service]]`; a service
//! whose text (from its header to the next) is byte for byte what it was at the
//! last load is taken from the previous config, and only the others are parsed.
//! Anything this shortcut cannot vouch for — a problem anywhere, a segment that is
//! not exactly one service, top-level tables after the services — falls back to
//! the full parse, which alone reports problems.

use crate::error::Problems;
use crate::reader::Table;
use crate::{Config, Globals, Service, across_services, service};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use toml::de::DeTable;

/// A fingerprint of each service's text → its position in the config parsed from it.
#[derive(Clone, Default)]
pub struct Segments(Arc<HashMap<u128, usize>>);

impl Segments {
    /// After a full parse: segment `i` must hold service `i` (its `name` key at
    /// `name_at[i]`), else nothing is remembered and the next load parses everything.
    pub(crate) fn index(src: &str, name_at: &[usize]) -> Segments {
        let (_, cuts) = split(src);
        let aligned = cuts.len() == name_at.len() && cuts.iter().zip(name_at).all(|((s, e), at)| s <= at && at < e);
        if !aligned {
            return Segments::default();
        }
        let own = cuts.iter().enumerate().filter(|(_, (s, e))| only_service(&src[*s..*e]));
        Segments(Arc::new(own.map(|(i, &(s, e))| (fingerprint(&src[s..e]), i)).collect()))
    }

    /// Where the service with this text was, if it was seen.
    pub(crate) fn find(&self, text: &str) -> Option<usize> {
        self.0.get(&fingerprint(text)).copied()
    }
}

/// A cache: it says nothing about what the config means.
impl PartialEq for Segments {
    fn eq(&self, _: &Segments) -> bool {
        true
    }
}

impl std::fmt::Debug for Segments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Segments({})", self.0.len())
    }
}

/// The shortcut of `load_reusing`; `None` whenever it cannot vouch for the result.
pub(crate) fn reuse(src: &str, path: &Path, previous: &Config) -> Option<Config> {
    let (prefix_end, cuts) = split(src);
    if cuts.is_empty() || previous.source != path {
        return None;
    }
    let prefix = &src[..prefix_end];
    let doc = DeTable::parse(prefix).ok()?;
    let mut p = Problems::new(prefix);
    let mut root = Table::new("the top level", 0, doc.get_ref());
    let globals = Globals::take(&mut root, &mut p, path);
    root.finish(&mut p);
    if !p.is_empty() {
        return None;
    }
    let mut services = Vec::with_capacity(cuts.len());
    let mut index = HashMap::with_capacity(cuts.len());
    for (i, &(start, end)) in cuts.iter().enumerate() {
        let text = &src[start..end];
        if !only_service(text) {
            return None;
        }
        let service = match previous.segments.find(text).and_then(|at| previous.services.get(at)) {
            Some(known) => known.clone(),
            None => Arc::new(one_service(text)?),
        };
        index.insert(fingerprint(text), i);
        services.push(service);
    }
    // Locations only matter for problems, and any problem means the full parse.
    let spans: Vec<service::Spans> = services
        .iter()
        .map(|s| service::Spans { name_at: 0, hosts_at: vec![0; s.hosts.len()], discover_at: None })
        .collect();
    across_services(&services, &spans, &mut p);
    // `discover` without `[cluster]`: the full parse says where.
    let discovers = || services.iter().any(|s| s.pools.iter().any(|p| p.discover));
    if !p.is_empty() || (!globals.has_cluster() && discovers()) {
        return None;
    }
    Some(globals.config(path, services, Segments(Arc::new(index))))
}

/// A segment that is exactly one valid `[[service]]` table, parsed on its own.
fn one_service(text: &str) -> Option<Service> {
    let doc = DeTable::parse(text).ok()?;
    let mut p = Problems::new(text);
    let mut root = Table::new("the top level", 0, doc.get_ref());
    let items = root.take("service")?.array(&mut p)?;
    root.finish(&mut p);
    let [item] = items.as_slice() else { return None };
    let table = item.table(&mut p, "[[service]]")?;
    let (service, _) = service::service(table, &mut p);
    p.is_empty().then_some(service)
}

/// The end of the part before the first `[[service]]` line, and each service's
/// byte range (from its header line to the next header or the end).
pub(crate) fn split(src: &str) -> (usize, Vec<(usize, usize)>) {
    let mut starts = Vec::new();
    let mut at = 0;
    for line in src.split_inclusive('\n') {
        if is_header(line) {
            starts.push(at);
        }
        at += line.len();
    }
    let prefix = starts.first().copied().unwrap_or(src.len());
    let ends = starts.iter().skip(1).copied().chain(std::iter::once(src.len()));
    (prefix, starts.iter().copied().zip(ends).collect())
}

/// Whether every table header in a segment after its `[[service]]` line belongs to
/// that service (`[service.…]`, `[[service.…]]`). A table of the file written
/// after a service — `[admin]`, `[[admin.tokens]]` — sits in its segment's text
/// but not in the service: such a segment is never taken from an earlier load
/// (and a header this cannot read counts as foreign, which only costs a parse).
fn only_service(segment: &str) -> bool {
    segment.lines().skip(1).all(|line| {
        let l = line.trim_start();
        !l.starts_with('[') || l.trim_start_matches('[').trim_start().starts_with("service.")
    })
}

fn is_header(line: &str) -> bool {
    let rest = line.trim_start().strip_prefix("[[service]]");
    rest.is_some_and(|r| r.trim().is_empty() || r.trim_start().starts_with('#'))
}

/// 128 bits of SipHash (two keys): collisions among 50,000 texts are out of reach.
pub(crate) fn fingerprint(text: &str) -> u128 {
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        text.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0x5eed_0001)) << 64) | u128::from(half(0x5eed_0002))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_exact_service_headers_only() {
        let src = "[listener]\nx = 1\n[[service]]\nname = \"a\"\n  [[service]] # b\nname = \"b\"\n[[services]]\n\"[[service]]\"\n";
        let (prefix, cuts) = split(src);
        assert_eq!(&src[..prefix], "[listener]\nx = 1\n");
        assert_eq!(cuts.len(), 2);
        assert_eq!(&src[cuts[0].0..cuts[0].1], "[[service]]\nname = \"a\"\n");
        assert!(src[cuts[1].0..cuts[1].1].ends_with("\"[[service]]\"\n"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert!(only_service("[[service]]\nname = \"a\"\n[service.pools.blue]\n  [[service.x]]\nk = \"[admin]\"\n"));
        assert!(!only_service("[[service]]\nname = \"a\"\n[admin]\n"));
        assert!(!only_service("[[service]]\n[ [admin.tokens]]\n"));
        assert!(!only_service("[[service]]\n[\"service\".pools.a]\n"));
    }

    #[test]
    fn a_reload_adding_discover_without_a_cluster_takes_the_full_parse_and_its_problem() {
        let path = Path::new("sy.toml");
        let base = "[listener]\naddress = \"127.0.0.1:8080\"\n[[service]]\nname = \"a\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"127.0.0.1:1\"]\n";
        let previous = crate::parse(base, path).unwrap();
        let edited = format!("{base}[service.pools.green]\ndiscover = true\n");
        assert!(reuse(&edited, path, &previous).is_none());
        let e = crate::parse(&edited, path).unwrap_err().lines();
        assert!(e[0].contains("needs a [cluster] section"), "{e:?}");
    }
}
