//! The control thread's side of etcd: one compare-and-swap transaction per change
//! (SPEC §8 "Writes"). The control thread is a plain thread; each call runs on the
//! cluster runtime and is bounded in time.

use crate::keys::Keys;
use etcd_client::{Client, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use switchyard_control::Event;
use switchyard_control::shared::{Commit, Remote, SharedDoc, SharedStore};

/// How long one commit may take before the change is refused with 503.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(3);

/// What the sync loop and the control thread share: the live client, and whether
/// this replica is in step with the store.
pub struct Link {
    pub(crate) keys: Keys,
    /// This replica's name.
    pub(crate) name: String,
    /// The lease of the current session (0: none).
    lease: AtomicI64,
    client: Mutex<Option<Client>>,
    ready: AtomicBool,
    rt: tokio::runtime::Handle,
}

impl Link {
    /// A link with no client yet, whose calls run on `rt`.
    pub fn new(keys: Keys, name: String, rt: tokio::runtime::Handle) -> Arc<Link> {
        let (client, ready, lease) = (Mutex::new(None), AtomicBool::new(false), AtomicI64::new(0));
        Arc::new(Link { keys, name, lease, client, ready, rt })
    }

    pub(crate) fn set_lease(&self, lease: i64) {
        self.lease.store(lease, Ordering::SeqCst);
    }

    pub(crate) fn set_client(&self, client: Option<Client>) {
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = client;
    }

    pub(crate) fn client(&self) -> Option<Client> {
        self.client.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// The `SharedStore` the controller is given.
pub struct EtcdStore(pub Arc<Link>);

impl SharedStore for EtcdStore {
    fn ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }

    fn share_preview_key(&self, local: &[u8]) -> Result<Vec<u8>, String> {
        self.preview_key(local)
    }

    fn replica(&self) -> &str {
        &self.0.name
    }

    fn claim_rollout(&self, service: &str, force: bool) -> Result<bool, String> {
        let link = &self.0;
        let client = link.client().ok_or("not connected to the cluster store")?;
        let lease = link.lease.load(Ordering::SeqCst);
        if lease == 0 {
            return Err("this replica has no lease yet".into());
        }
        let key = link.keys.rollout_owner(service);
        let put = || TxnOp::put(key.clone(), link.name.clone(), Some(PutOptions::new().with_lease(lease)));
        let holder = |resp: etcd_client::TxnResponse| gets(&resp).next().and_then(|g| first_value(&g));
        if force {
            link.txn(&client, Txn::new().and_then([put()]))?;
            return Ok(true);
        }
        // Held here already (perhaps under an older lease): put under this one.
        let renew = Txn::new()
            .when([Compare::value(key.clone(), CompareOp::Equal, link.name.clone())])
            .and_then([put()])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = link.txn(&client, renew)?;
        if resp.succeeded() {
            return Ok(true);
        }
        if holder(resp).is_some() {
            return Ok(false);
        }
        // Nobody holds it: the first claim wins.
        let create = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([put()])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = link.txn(&client, create)?;
        Ok(resp.succeeded() || holder(resp).is_some_and(|h| h == link.name.as_bytes()))
    }

    fn commit(
        &self,
        service: &str,
        expected: i64,
        doc: &SharedDoc,
        events: &[Event],
        keep_from: u64,
    ) -> Result<Commit, String> {
        let link = &self.0;
        let client = link.client().ok_or("not connected to the cluster store")?;
        let keys = &link.keys;
        let key = keys.service(service);
        let mut ops = vec![TxnOp::put(key.clone(), json(doc), None)];
        ops.extend(events.iter().map(|e| TxnOp::put(keys.history(service, e.version), json(e), None)));
        if keep_from > 1 {
            let old = DeleteOptions::new().with_range(keys.history(service, keep_from));
            ops.push(TxnOp::delete(keys.history(service, 0), Some(old)));
        }
        // A lost race answers with the key as it now is and the history after ours.
        let first_new = events.first().map_or(doc.version, |e| e.version);
        let later = GetOptions::new().with_range(keys.history_end(service));
        let txn = Txn::new()
            .when([Compare::mod_revision(key.clone(), CompareOp::Equal, expected)])
            .and_then(ops)
            .or_else([TxnOp::get(key, None), TxnOp::get(keys.history(service, first_new), Some(later))]);
        let resp = link.txn(&client, txn)?;
        if resp.succeeded() {
            return Ok(Commit::Done(resp.header().map_or(0, |h| h.revision())));
        }
        let mut got = gets(&resp);
        let (Some(current), history) = (got.next(), got.next()) else { return Ok(Commit::Lost(None)) };
        let Some(kv) = current.kvs().first() else { return Ok(Commit::Lost(None)) };
        let events = history
            .map(|h| h.kvs().iter().filter_map(|kv| serde_json::from_slice::<Event>(kv.value()).ok()).collect())
            .unwrap_or_default();
        Ok(Commit::Lost(Some(Remote {
            service: service.to_owned(),
            revision: kv.mod_revision(),
            doc: serde_json::from_slice(kv.value()).map_err(|e| e.to_string()),
            events,
        })))
    }
}

impl EtcdStore {
    fn preview_key(&self, local: &[u8]) -> Result<Vec<u8>, String> {
        let link = &self.0;
        let client = link.client().ok_or("not connected to the cluster store")?;
        let key = link.keys.preview_key();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), local.to_vec(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = link.txn(&client, txn)?;
        if resp.succeeded() {
            tracing::info!("cluster: stored this replica's preview token key for every replica");
            return Ok(local.to_vec());
        }
        let stored = gets(&resp).next().and_then(|g| first_value(&g));
        stored.ok_or_else(|| "the shared preview key vanished while being read".into())
    }
}

impl Link {
    /// One transaction from the control thread, bounded by `COMMIT_TIMEOUT`.
    fn txn(&self, client: &Client, txn: Txn) -> Result<etcd_client::TxnResponse, String> {
        let mut kv = client.kv_client();
        match self.rt.block_on(async { tokio::time::timeout(COMMIT_TIMEOUT, kv.txn(txn)).await }) {
            Err(_) => Err(format!(
                "no answer within {COMMIT_TIMEOUT:?}; the change may still land (check the service's version before trying again)"
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(r)) => Ok(r),
        }
    }
}

/// The answers of a transaction's get operations, in order.
fn gets(resp: &etcd_client::TxnResponse) -> impl Iterator<Item = etcd_client::GetResponse> {
    resp.op_responses().into_iter().filter_map(|r| match r {
        TxnOpResponse::Get(g) => Some(g),
        _ => None,
    })
}

/// The value of the first key a get found.
fn first_value(g: &etcd_client::GetResponse) -> Option<Vec<u8>> {
    g.kvs().first().map(|kv| kv.value().to_vec())
}

/// A value as stored: plain data (strings, numbers, maps) cannot fail to serialise.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
