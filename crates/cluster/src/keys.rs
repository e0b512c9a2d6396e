//! The key layout under the prefix (SPEC §8), and what a key/value read from
//! etcd means. Pure: no I/O, so every odd key or value is unit-tested.

use std::collections::BTreeMap;
use switchyard_control::Event;
use switchyard_control::shared::{Applied, Found, Remote, ReplicaView, SharedDoc};

/// Keys of one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// What one key under the prefix is.
#[derive(Debug, PartialEq)]
pub enum Key<'a> {
    /// `services/SVC`.
    Service(&'a str),
    /// `history/SVC/VERSION`.
    History(&'a str, u64),
    /// `replicas/NAME`.
    Replica(&'a str),
    /// `discovery/SVC/POOL/HOST:PORT`.
    Discovery(&'a str, &'a str, &'a str),
    /// `preview-key`.
    PreviewKey,
    /// `rollout-owner/SVC`.
    RolloutOwner(&'a str),
    /// Anything else (rollout-owner, foreign keys).
    Other,
}

impl Keys {
    /// Keys under `prefix` (no trailing `/`).
    pub fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.trim_end_matches('/').to_owned() }
    }

    /// Everything of this cluster: `PREFIX/`.
    pub fn all(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// The range `[PREFIX/SUB, end)` of everything starting with `PREFIX/SUB`.
    pub fn sub(&self, sub: &str) -> (String, String) {
        let start = format!("{}/{sub}", self.prefix);
        let mut end = start.clone().into_bytes();
        // The next key after every key with this prefix: last byte + 1.
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        (start, String::from_utf8_lossy(&end).into_owned())
    }

    /// `PREFIX/services/SVC`.
    pub fn service(&self, svc: &str) -> String {
        format!("{}/services/{svc}", self.prefix)
    }

    /// `PREFIX/history/SVC/VERSION`, the version zero-padded to 20 digits.
    pub fn history(&self, svc: &str, version: u64) -> String {
        format!("{}/history/{svc}/{version:020}", self.prefix)
    }

    /// The end of a service's history range (`/` + 1 = `0`).
    pub fn history_end(&self, svc: &str) -> String {
        format!("{}/history/{svc}0", self.prefix)
    }

    /// `PREFIX/replicas/NAME`.
    pub fn replica(&self, name: &str) -> String {
        format!("{}/replicas/{name}", self.prefix)
    }

    /// `PREFIX/discovery/SVC/POOL/HOST:PORT`.
    pub fn discovery(&self, svc: &str, pool: &str, address: &str) -> String {
        format!("{}/discovery/{svc}/{pool}/{address}", self.prefix)
    }

    /// `PREFIX/preview-key`: the preview token key every replica uses.
    pub fn preview_key(&self) -> String {
        format!("{}/preview-key", self.prefix)
    }

    /// `PREFIX/rollout-owner/SVC`: who drives the service's rollout.
    pub fn rollout_owner(&self, svc: &str) -> String {
        format!("{}/rollout-owner/{svc}", self.prefix)
    }

    /// What a key is.
    pub fn parse<'a>(&self, key: &'a str) -> Key<'a> {
        let Some(rest) = key.strip_prefix(self.prefix.as_str()).and_then(|r| r.strip_prefix('/')) else {
            return Key::Other;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["services", svc] if !svc.is_empty() => Key::Service(svc),
            ["history", svc, v] if !svc.is_empty() => v.parse().map_or(Key::Other, |v| Key::History(svc, v)),
            ["replicas", name] if !name.is_empty() => Key::Replica(name),
            ["preview-key"] => Key::PreviewKey,
            ["rollout-owner", svc] if !svc.is_empty() => Key::RolloutOwner(svc),
            ["discovery", svc, pool, addr] if ![svc, pool, addr].iter().any(|p| p.is_empty()) => {
                Key::Discovery(svc, pool, addr)
            }
            _ => Key::Other,
        }
    }
}

/// A replica key's value.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReplicaValue {
    /// Its admin API address.
    pub admin: String,
    /// What it applied.
    #[serde(flatten)]
    pub applied: Applied,
}

/// What a batch of key/values (a full read, or one watch answer) says, sorted out.
#[derive(Debug, Default)]
pub struct Batch {
    /// Service keys put, with the history events that came with them.
    pub remotes: Vec<Remote>,
    /// Replica keys put (name → view) or deleted (name → None).
    pub replicas: Vec<(String, Option<ReplicaView>)>,
    /// Discovery keys put or deleted.
    pub discovery: Vec<Found>,
    /// The shared preview token key, when put.
    pub preview_key: Option<Vec<u8>>,
    /// Rollout owner keys put (holder) or deleted.
    pub owners: Vec<(String, Option<String>)>,
    /// History values that could not be read (counted and logged by the caller).
    pub unreadable: Vec<String>,
}

impl Batch {
    /// Sorts out puts (`value` Some, with its `mod_revision`) and deletes (None).
    pub fn of<'a>(keys: &Keys, kvs: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>, i64)>) -> Batch {
        let mut b = Batch::default();
        let mut events: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for (key, value, revision) in kvs {
            match (keys.parse(key), value) {
                (Key::Service(svc), Some(v)) => b.remotes.push(Remote {
                    service: svc.to_owned(),
                    revision,
                    doc: serde_json::from_slice::<SharedDoc>(v).map_err(|e| e.to_string()),
                    events: vec![],
                }),
                (Key::History(svc, _), Some(v)) => match serde_json::from_slice::<Event>(v) {
                    Ok(e) => events.entry(svc.to_owned()).or_default().push(e),
                    Err(e) => b.unreadable.push(format!("{key}: {e}")),
                },
                (Key::Replica(name), Some(v)) => match serde_json::from_slice::<ReplicaValue>(v) {
                    Ok(r) => b.replicas.push((
                        name.to_owned(),
                        Some(ReplicaView { name: name.to_owned(), admin: r.admin, applied: r.applied }),
                    )),
                    Err(e) => b.unreadable.push(format!("{key}: {e}")),
                },
                (Key::Replica(name), None) => b.replicas.push((name.to_owned(), None)),
                (Key::PreviewKey, Some(v)) => b.preview_key = Some(v.to_vec()),
                (Key::RolloutOwner(svc), v) => {
                    b.owners.push((svc.to_owned(), v.map(|v| String::from_utf8_lossy(v).into_owned())));
                }
                (Key::Discovery(service, pool, address), v) => b.discovery.push(Found {
                    service: service.to_owned(),
                    pool: pool.to_owned(),
                    address: address.to_owned(),
                    present: v.is_some(),
                }),
                _ => {}
            }
        }
        // Several revisions of one service may come together: each takes the
        // events in its own version range from all of them.
        for r in &mut b.remotes {
            if let Some(ev) = events.get(&r.service) {
                r.events = ev.clone();
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_laid_out_as_spec_says_and_parse_back() {
        let k = Keys::new("/sy/");
        assert_eq!(k.service("shop"), "/sy/services/shop");
        assert_eq!(k.history("shop", 42), "/sy/history/shop/00000000000000000042");
        assert_eq!(k.replica("proxy-a"), "/sy/replicas/proxy-a");
        assert_eq!(k.parse("/sy/services/shop"), Key::Service("shop"));
        assert_eq!(k.parse("/sy/history/shop/00000000000000000042"), Key::History("shop", 42));
        assert_eq!(k.parse("/sy/replicas/proxy-a"), Key::Replica("proxy-a"));
        assert_eq!(k.parse(&k.rollout_owner("shop")), Key::RolloutOwner("shop"));
        assert_eq!(k.sub("services/"), ("/sy/services/".to_owned(), "/sy/services0".to_owned()));
        assert_eq!(k.sub("preview-key"), ("/sy/preview-key".to_owned(), "/sy/preview-kez".to_owned()));
        assert_eq!(k.parse(&k.preview_key()), Key::PreviewKey);
        assert_eq!(k.discovery("shop", "green", "10.0.0.7:8080"), "/sy/discovery/shop/green/10.0.0.7:8080");
        assert_eq!(k.parse("/sy/discovery/shop/green/10.0.0.7:8080"), Key::Discovery("shop", "green", "10.0.0.7:8080"));
        for other in [
            "/sy/history/shop/x",
            "/sy/services/",
            "/syx/services/shop",
            "/sy/services/a/b",
            "/other",
            "/sy/discovery/shop/green",
        ] {
            assert_eq!(k.parse(other), Key::Other, "{other}");
        }
    }

    #[test]
    fn garbage_values_are_kept_apart_not_fatal() {
        let k = Keys::new("/sy");
        let doc = br#"{"version":3,"traffic":{"blue":0,"green":100},"rollout":null}"#;
        let ev = br#"{"version":3,"at":"2026-12-02T00:00:00Z","kind":"switch","from":{"blue":100,"green":0},"to":{"blue":0,"green":100},"actor":"api","reason":"","forced":false}"#;
        let b = Batch::of(
            &k,
            [
                ("/sy/services/shop", Some(&doc[..]), 7),
                ("/sy/history/shop/00000000000000000003", Some(&ev[..]), 7),
                ("/sy/services/api", Some(&b"{not json"[..]), 8),
                ("/sy/history/api/00000000000000000001", Some(&b"[]"[..]), 8),
                ("/sy/replicas/b", None, 9),
                ("/sy/discovery/shop/green/10.0.0.7:80", Some(&b"garbage is fine"[..]), 10),
                ("/sy/discovery/shop/green/10.0.0.8:80", None, 11),
            ],
        );
        assert_eq!(
            b.discovery.iter().map(|f| (f.address.as_str(), f.present)).collect::<Vec<_>>(),
            [("10.0.0.7:80", true), ("10.0.0.8:80", false)]
        );
        assert_eq!(b.remotes.len(), 2);
        let shop = &b.remotes[0];
        assert_eq!((shop.revision, shop.doc.as_ref().map(|d| d.version), shop.events.len()), (7, Ok(3), 1));
        assert!(b.remotes[1].doc.is_err());
        assert_eq!(b.unreadable.len(), 1);
        assert_eq!(b.replicas, vec![("b".to_owned(), None)]);
    }
}
