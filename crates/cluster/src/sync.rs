//! The apply loop (SPEC §8 "Apply", "Replicas", "Store down"): connect, take a
//! lease, read the whole prefix at one revision and apply it through the control
//! path, register this replica, then watch from the next revision. A compacted or
//! cancelled watch reads everything again; a lost connection or lease marks the
//! store down and starts over (new lease, full read). Never skips a revision.

use crate::keys::{Batch, ReplicaValue};
use crate::status::Status;
use crate::store::{Link, json};
use etcd_client::{Client, ConnectOptions, EventType, GetOptions, KeyValue, PutOptions, WatchOptions};
use std::sync::Arc;
use std::time::Duration;
use switchyard_control::shared::{Applied, Update};
use switchyard_control::state::HISTORY_LIMIT;
use switchyard_control::{Command, ControlHandle};
use tokio::sync::watch;

/// Keys per page of a full read.
const PAGE: i64 = 500;

/// The largest message taken from etcd (a page of big values, a watch answer
/// carrying many events); tonic's default is 4 MiB.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Everything the loop needs.
pub(crate) struct Ctx {
    pub(crate) link: Arc<Link>,
    pub(crate) endpoints: Vec<String>,
    pub(crate) name: String,
    pub(crate) admin: String,
    pub(crate) lease_ttl: Duration,
    pub(crate) control: ControlHandle,
    pub(crate) applied: watch::Receiver<Applied>,
    pub(crate) status: Status,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ended {
    #[error("{0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("{0}")]
    Other(String),
}

/// Runs until the control task is gone.
pub(crate) async fn run(mut ctx: Ctx) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = tokio::time::Instant::now();
        let ended = session(&mut ctx).await;
        ctx.link.set_ready(false);
        ctx.link.set_lease(0);
        ctx.link.set_client(None);
        if let Err(e) = &ended {
            ctx.status.down(&e.to_string());
        }
        if ctx.control.is_closed() {
            return;
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(200);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One connection: lease, then full read + watch until compaction (read again)
/// or an error (the caller starts over).
async fn session(ctx: &mut Ctx) -> Result<(), Ended> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
    let client = Client::connect(&ctx.endpoints, Some(options)).await.inspect_err(|_| metric("connect"))?;
    let ttl = i64::try_from(ctx.lease_ttl.as_secs()).unwrap_or(10).max(2);
    let lease = client.clone().lease_grant(ttl, None).await.inspect_err(|_| metric("connect"))?.id();
    // Its own task, so that a slow apply never delays a keep-alive.
    let (lost_tx, mut lost) = tokio::sync::oneshot::channel();
    let _keeper = Abort(tokio::spawn(keep_lease(client.clone(), lease, ctx.lease_ttl, lost_tx)));
    ctx.link.set_lease(lease);
    ctx.link.set_client(Some(client.clone()));
    loop {
        let revision = read_all(ctx, &client).await?;
        register(ctx, &client, lease).await?;
        let opts = WatchOptions::new().with_prefix().with_start_revision(revision + 1).with_prev_key();
        let mut watcher = client.watch_client().max_decoding_message_size(MAX_MESSAGE);
        let mut stream = watcher.watch(ctx.link.keys.all(), Some(opts)).await?;
        loop {
            tokio::select! {
                msg = stream.message() => {
                    let Some(resp) = msg.inspect_err(|_| metric("watch"))? else {
                        metric("watch");
                        return Err(Ended::Other("the watch stream ended".into()));
                    };
                    if resp.canceled() || resp.compact_revision() > 0 {
                        metric("watch");
                        tracing::warn!(compact_revision = resp.compact_revision(), reason = resp.cancel_reason(), "cluster: watch cancelled; reading everything again");
                        break;
                    }
                    apply_events(ctx, &resp).await?;
                }
                why = &mut lost => {
                    metric("lease");
                    return Err(Ended::Other(why.unwrap_or_else(|_| "the lease keeper stopped".into())));
                }
                changed = ctx.applied.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    register(ctx, &client, lease).await?;
                }
            }
        }
    }
}

/// Keeps the replica's lease alive every third of its TTL; says why it stopped.
async fn keep_lease(mut client: Client, lease: i64, ttl: Duration, lost: tokio::sync::oneshot::Sender<String>) {
    let why = async {
        let (mut keeper, mut alive) = client.lease_keep_alive(lease).await?;
        let mut beat = tokio::time::interval(ttl / 3);
        loop {
            beat.tick().await;
            keeper.keep_alive().await?;
            match alive.message().await? {
                Some(k) if k.ttl() > 0 => {}
                _ => return Ok::<String, etcd_client::Error>("this replica's lease expired".into()),
            }
        }
    };
    let why = match why.await {
        Ok(w) => w,
        Err(e) => format!("lease keep-alive failed: {e}"),
    };
    let _ = lost.send(why);
}

/// Aborts a task when dropped (the session that started it ended).
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads everything this replica needs at one revision and applies it; returns
/// the revision. Ranges are read in pages (any size of cluster fits), and only
/// the history a replica lacks is read.
async fn read_all(ctx: &mut Ctx, client: &Client) -> Result<i64, Ended> {
    let keys = &ctx.link.keys;
    let mut tries = 0;
    let (kvs, revision) = loop {
        match read_keys(keys, client).await {
            // Compacted between two pages: read again at the current revision.
            Err(e) if tries < 3 && e.to_string().contains("compacted") => tries += 1,
            other => break other?,
        }
    };
    let mut batch =
        Batch::of(keys, kvs.iter().filter_map(|kv| Some((kv.key_str().ok()?, Some(kv.value()), kv.mod_revision()))));
    let applied = ctx.applied.borrow().applied.clone();
    for r in &mut batch.remotes {
        let Ok(doc) = &r.doc else { continue };
        let have = applied.get(&r.service).copied().unwrap_or(0);
        if doc.version <= have {
            continue;
        }
        let from = have.max(doc.version.saturating_sub(HISTORY_LIMIT as u64)) + 1;
        let (start, end) = (keys.history(&r.service, from), keys.history_end(&r.service));
        for kv in range(client, &(start, end), revision).await?.0 {
            match serde_json::from_slice(kv.value()) {
                Ok(event) => r.events.push(event),
                Err(e) => batch.unreadable.push(format!("{}: {e}", kv.key_str().unwrap_or("?"))),
            }
        }
    }
    unreadable(&batch);
    ctx.status.replace_replicas(batch.replicas.into_iter().filter_map(|(_, r)| r).collect());
    let update = Update {
        full: true,
        remotes: batch.remotes,
        discovery: batch.discovery,
        preview_key: batch.preview_key,
        owners: batch.owners,
    };
    // What the full read applies itself (seeding, pending rollbacks, owner
    // keys) commits through the store; other changes wait until it is applied.
    ctx.control.call(Command::ClusterSync(update)).await.map_err(|e| Ended::Other(e.to_string()))?;
    ctx.link.set_ready(true);
    ctx.status.up();
    tracing::info!(revision, "cluster: read the store whole and applied it");
    Ok(revision)
}

/// Every key a full read takes, at one revision; and that revision.
async fn read_keys(keys: &crate::keys::Keys, client: &Client) -> Result<(Vec<KeyValue>, i64), Ended> {
    let (mut kvs, revision) = range(client, &keys.sub("services/"), 0).await?;
    for sub in ["replicas/", "discovery/", "rollout-owner/", "preview-key"] {
        kvs.extend(range(client, &keys.sub(sub), revision).await?.0);
    }
    Ok((kvs, revision))
}

/// Every key in `[start, end)` at `revision` (0: now), in pages; and the revision read.
async fn range(client: &Client, (start, end): &(String, String), revision: i64) -> Result<(Vec<KeyValue>, i64), Ended> {
    let mut kv = client.kv_client().max_decoding_message_size(MAX_MESSAGE);
    let (mut out, mut at, mut from) = (Vec::new(), revision, start.clone().into_bytes());
    loop {
        let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if at > 0 {
            opts = opts.with_revision(at);
        }
        let mut resp = kv.get(from.clone(), Some(opts)).await?;
        if at == 0 {
            at = resp.header().map_or(0, |h| h.revision());
        }
        let page = resp.take_kvs();
        let more = resp.more();
        if let Some(last) = page.last() {
            from = last.key().to_vec();
            from.push(0);
        }
        out.extend(page);
        if !more {
            return Ok((out, at));
        }
    }
}

/// One watch answer: service changes through the control path, replicas to the status.
async fn apply_events(ctx: &mut Ctx, resp: &etcd_client::WatchResponse) -> Result<(), Ended> {
    if resp.events().is_empty() {
        return Ok(());
    }
    let kvs = resp.events().iter().filter_map(|ev| {
        let kv = ev.kv()?;
        let value = (ev.event_type() == EventType::Put).then(|| kv.value());
        Some((kv.key_str().ok()?, value, kv.mod_revision()))
    });
    let batch = Batch::of(&ctx.link.keys, kvs);
    unreadable(&batch);
    for (name, view) in batch.replicas {
        ctx.status.set_replica(&name, view);
    }
    let any = !batch.remotes.is_empty() || !batch.discovery.is_empty() || !batch.owners.is_empty();
    if any || batch.preview_key.is_some() {
        let update = Update {
            full: false,
            remotes: batch.remotes,
            discovery: batch.discovery,
            preview_key: batch.preview_key,
            owners: batch.owners,
        };
        ctx.control.call(Command::ClusterSync(update)).await.map_err(|e| Ended::Other(e.to_string()))?;
    }
    Ok(())
}

/// Puts this replica's key, under its lease, with what it has applied now.
async fn register(ctx: &mut Ctx, client: &Client, lease: i64) -> Result<(), Ended> {
    let applied = ctx.applied.borrow_and_update().clone();
    let value = ReplicaValue { admin: ctx.admin.clone(), applied };
    let key = ctx.link.keys.replica(&ctx.name);
    client.clone().put(key, json(&value), Some(PutOptions::new().with_lease(lease))).await?;
    Ok(())
}

fn unreadable(batch: &Batch) {
    for what in &batch.unreadable {
        metric("unreadable_value");
        tracing::error!("cluster: ignoring an unreadable value: {what}");
    }
}

fn metric(kind: &'static str) {
    switchyard_metrics::cluster_error(kind);
}
