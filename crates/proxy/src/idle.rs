//! A backend's idle HTTP/1 keep-alive connections, and its connection cap.
//!
//! Each worker thread runs its own runtime, and a connection's socket and timer are
//! registered with the runtime that opened it: driven from another one, it would
//! only see readiness when that runtime's thread happens to turn its driver, and
//! never once that runtime has stopped. So every idle connection is tagged with its
//! runtime and only handed to a request on the same one. Threads get a stack each
//! (sized by the worker count), so workers do not contend; with more threads than
//! stacks they share one, and the tags keep them apart.

use crate::h1::upstream::Raw;
use crate::upstream::Lease;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::{Context, Waker};
use std::time::Duration;
use tokio::runtime::{Handle, Id};
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Instant;

/// At most this many idle connections are kept per stack; more are closed.
const MAX_IDLE: usize = 1024;
/// The reaper closes idle connections at least this often.
const MAX_REAP_INTERVAL: Duration = Duration::from_secs(15);
/// How long the idle connections of a pool that lost all its traffic stay open:
/// a switch back (a rollback) within it finds them warm. Then they close (draining).
pub(crate) const DRAIN_GRACE: Duration = Duration::from_secs(2);

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's number, in the order threads first use a stack; workers (the
    /// only threads that forward) come out as 0, 1, … and get a stack each.
    static THREAD: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// The instant deadlines are counted from (the first one asked for).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` in nanoseconds since `epoch()`.
fn since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// The runtime this code runs on, if any.
pub(crate) fn runtime() -> Option<Id> {
    Handle::try_current().ok().map(|h| h.id())
}

struct Entry {
    conn: Idle,
    since: Instant,
    owner: Id,
}

/// An idle connection: hyper's (requests from HTTP/2 clients) or the HTTP/1 path's.
enum Idle {
    Hyper(Lease),
    Raw(Raw),
}

impl Idle {
    fn is_raw(&self) -> bool {
        matches!(self, Idle::Raw(_))
    }

    /// Still usable: not closed, nothing unasked-for arrived.
    fn alive(&mut self, cx: &mut Context<'_>) -> bool {
        match self {
            Idle::Hyper(lease) => lease.drive(cx),
            Idle::Raw(raw) => raw.alive(),
        }
    }
}

type Stack = Mutex<Vec<Entry>>;

fn lock(stack: &Stack) -> MutexGuard<'_, Vec<Entry>> {
    stack.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A backend's idle connections, newest last in each stack.
pub(crate) struct IdleConns {
    /// Made at the backend's first use: a backend that never served holds none.
    stacks: OnceLock<Box<[Stack]>>,
    shards: usize,
    idle_timeout: Duration,
    reaper: AtomicBool,
    /// Wakes the reaper early (a retirement moved its next sweep closer).
    wake: OnceLock<Arc<Notify>>,
    /// When the grace of a retired pool ends, in nanoseconds since `epoch()` (0:
    /// not retired), read on every put without a lock.
    closes_at: AtomicU64,
    limit: Arc<Limit>,
}

impl IdleConns {
    /// Empty stacks (`shards` of them, at least one) whose connections close after
    /// `idle_timeout` unused; at most `cap` connections open at once (0 = no limit).
    pub(crate) fn new(idle_timeout: Duration, shards: usize, cap: usize) -> IdleConns {
        // Without a cap nothing is counted or awaited: every backend shares one.
        static UNLIMITED: OnceLock<Arc<Limit>> = OnceLock::new();
        let limit = |cap| {
            Arc::new(Limit { cap, open: AtomicUsize::new(0), waiting: AtomicUsize::new(0), freed: Notify::new() })
        };
        IdleConns {
            stacks: OnceLock::new(),
            shards: shards.max(1),
            idle_timeout,
            reaper: AtomicBool::new(false),
            wake: OnceLock::new(),
            closes_at: AtomicU64::new(0),
            limit: if cap == 0 { UNLIMITED.get_or_init(|| limit(0)).clone() } else { limit(cap) },
        }
    }

    fn stacks(&self) -> &[Stack] {
        self.stacks.get_or_init(|| (0..self.shards).map(|_| Mutex::default()).collect())
    }

    /// The stacks if any were made (walking them never makes them).
    fn made(&self) -> &[Stack] {
        self.stacks.get().map_or(&[], |s| s)
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The cap this backend's connections count against.
    pub(crate) fn limit(&self) -> &Arc<Limit> {
        &self.limit
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        let stacks = self.stacks();
        lock(&stacks[THREAD.with(|t| *t) % stacks.len()])
    }

    /// The newest idle connection of runtime `me`, with when it went idle.
    pub(crate) fn take(&self, me: Id) -> Option<(Lease, Instant)> {
        match self.take_kind(me, false)? {
            Entry { conn: Idle::Hyper(lease), since, .. } => Some((lease, since)),
            Entry { conn: Idle::Raw(_), .. } => None,
        }
    }

    /// The newest idle HTTP/1-path connection of runtime `me`, with when it went idle.
    pub(crate) fn take_raw(&self, me: Id) -> Option<(Raw, Instant)> {
        match self.take_kind(me, true)? {
            Entry { conn: Idle::Raw(raw), since, .. } => Some((raw, since)),
            Entry { conn: Idle::Hyper(_), .. } => None,
        }
    }

    /// Takes the newest entry of runtime `me` of the kind `raw` says.
    fn take_kind(&self, me: Id, raw: bool) -> Option<Entry> {
        let mut stack = self.lock();
        let i = stack.iter().rposition(|e| e.owner == me && e.conn.is_raw() == raw)?;
        Some(stack.remove(i))
    }

    /// How many idle connections runtime `me` could take now, of the kind `raw` says.
    pub(crate) fn idle_on(&self, me: Id, raw: bool) -> usize {
        self.made().iter().map(|s| lock(s).iter().filter(|e| e.owner == me && e.conn.is_raw() == raw).count()).sum()
    }

    /// Gives back an HTTP/1-path connection whose exchange ended cleanly.
    pub(crate) fn put_raw(self: &Arc<Self>, raw: Raw) {
        let Some(owner) = raw.runtime else { return };
        self.keep(Idle::Raw(raw), owner);
    }

    /// Gives back a connection whose response was read to its end.
    pub(crate) fn put(self: &Arc<Self>, mut lease: Lease) {
        // Without a runtime no request could use it again: it closes.
        let Some(owner) = lease.runtime else { return };
        if !lease.is_open() {
            return;
        }
        lease.park();
        self.keep(Idle::Hyper(lease), owner);
    }

    /// Its pool lost all its traffic: the idle connections close once
    /// `DRAIN_GRACE` has passed, and so does any that comes back after that.
    /// A retirement already under way keeps its deadline.
    pub(crate) fn retire(&self) {
        let at = since_epoch(Instant::now() + DRAIN_GRACE).max(1);
        if self.closes_at.compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            // A permit if the reaper is not waiting yet: it looks again either way.
            self.wake.get_or_init(Arc::default).notify_one();
        }
    }

    /// Its pool has traffic again within the grace: the connections stay.
    pub(crate) fn revive(&self) {
        self.closes_at.store(0, Ordering::Relaxed);
    }

    /// When a retired pool's connections close (`None`: not retired).
    pub(crate) fn closes_at(&self) -> Option<Instant> {
        match self.closes_at.load(Ordering::Relaxed) {
            0 => None,
            n => Some(epoch() + Duration::from_nanos(n)),
        }
    }

    /// Retired and past the grace: nothing is kept any more.
    pub(crate) fn expired(&self) -> bool {
        self.closes_at().is_some_and(|at| at <= Instant::now())
    }

    fn keep(self: &Arc<Self>, conn: Idle, owner: Id) {
        if self.expired() {
            drop(conn); // draining: it closes
            self.limit.notify();
            return;
        }
        let rejected = {
            let mut idle = self.lock();
            if idle.len() < MAX_IDLE {
                idle.push(Entry { conn, since: Instant::now(), owner });
                None
            } else {
                Some(conn)
            }
        };
        drop(rejected); // closes it, outside the lock
        self.limit.notify();
        if !self.reaper.swap(true, Ordering::Relaxed) {
            match Handle::try_current() {
                Ok(rt) => drop(rt.spawn(reap(Arc::downgrade(self)))),
                // No runtime to sweep from: let the next put try again.
                Err(_) => self.reaper.store(false, Ordering::Relaxed),
            }
        }
    }

    /// Closes one idle connection to make room under the cap: one this request
    /// cannot use (registered with another runtime, or of the other kind than `raw`
    /// says), or with `any` also one it could.
    pub(crate) fn close_one(&self, me: Option<Id>, any: bool, raw: bool) -> bool {
        for stack in self.made() {
            let closed = {
                let mut idle = lock(stack);
                let i = idle.iter().position(|e| any || Some(e.owner) != me || e.conn.is_raw() != raw);
                i.map(|i| idle.remove(i))
            };
            if closed.is_some() {
                return true; // dropped here, outside the lock
            }
        }
        false
    }

    /// Closes connections idle too long or closed by the backend; false when none are
    /// left (and this reaper should end).
    fn reap(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut left = false;
        let expired = self.expired();
        for stack in self.made() {
            if expired {
                let closing = std::mem::take(&mut *lock(stack));
                drop(closing); // outside the lock
                continue;
            }
            let mut idle = lock(stack);
            idle.retain_mut(|e| e.since.elapsed() < self.idle_timeout && e.conn.alive(&mut cx));
            left |= !idle.is_empty();
        }
        if left {
            return true;
        }
        self.reaper.store(false, Ordering::Relaxed);
        // A put that raced with the sweep saw the flag still set and started no reaper.
        let raced = self.made().iter().any(|s| !lock(s).is_empty());
        raced && !self.reaper.swap(true, Ordering::Relaxed)
    }
}

/// Sweeps a backend's idle connections until it has none (or is gone); a
/// retirement wakes it to sweep when the grace ends.
async fn reap(conns: Weak<IdleConns>) {
    loop {
        let Some((next, wake)) = conns.upgrade().map(|c| {
            let wake = c.wake.get_or_init(Arc::default).clone();
            let every = Instant::now() + c.idle_timeout.min(MAX_REAP_INTERVAL);
            (c.closes_at().map_or(every, |at| at.min(every)), wake)
        }) else {
            return;
        };
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = wake.notified() => continue,
        }
        match conns.upgrade() {
            Some(c) if c.reap() => {}
            _ => return,
        }
    }
}

/// `max_upstream_connections` for one backend: its open connections, idle and busy,
/// on every worker.
pub(crate) struct Limit {
    cap: usize,
    open: AtomicUsize,
    /// Requests waiting for room; only then do puts and closes notify.
    waiting: AtomicUsize,
    freed: Notify,
}

/// The backend is at its cap.
pub(crate) struct AtCap;

impl Limit {
    /// Room for one more connection: `None` when there is no cap (nothing counted).
    pub(crate) fn reserve(self: &Arc<Self>) -> Result<Option<Slot>, AtCap> {
        if self.cap == 0 {
            return Ok(None);
        }
        let mut n = self.open.load(Ordering::SeqCst);
        loop {
            if n >= self.cap {
                return Err(AtCap);
            }
            match self.open.compare_exchange_weak(n, n + 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Ok(Some(Slot(self.clone()))),
                Err(now) => n = now,
            }
        }
    }

    /// Registers a request waiting for room; check again after `enable`-ing the returned
    /// future, then await it.
    pub(crate) fn waiter(&self) -> Waiter<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiter(self)
    }

    fn notify(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_waiters();
        }
    }
}

/// A request waiting for a connection to come back or close.
pub(crate) struct Waiter<'a>(&'a Limit);

impl Waiter<'_> {
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.0.freed.notified()
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One open connection counted against its backend's cap, until dropped.
pub(crate) struct Slot(Arc<Limit>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::connect;
    use std::sync::mpsc;

    /// Each thread runs its own current-thread runtime, as the workers do. With more
    /// threads than stacks (9 against 8 before, 2 here) several share a stack, and
    /// none may be handed a connection registered with another runtime.
    #[test]
    fn a_runtime_only_gets_back_connections_it_opened() {
        const THREADS: usize = 9;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(THREADS).collect();
            std::thread::park();
            drop(held);
        });
        let conns = Arc::new(IdleConns::new(Duration::from_secs(60), 2, 0));
        let (done_tx, done) = mpsc::channel::<Option<bool>>();
        let mut turns = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..THREADS {
            let (turn, go) = mpsc::channel::<()>();
            turns.push(turn);
            let (conns, addr, done) = (conns.clone(), addr.clone(), done_tx.clone());
            threads.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    let Ok(lease) = connect(&addr, Duration::from_secs(5), None).await else { panic!("connect") };
                    go.recv().unwrap();
                    conns.put(lease);
                    done.send(None).unwrap();
                    go.recv().unwrap();
                    let me = runtime().unwrap();
                    let got = conns.take(me).map(|(lease, _)| lease.runtime == Some(me));
                    done.send(got).unwrap();
                    // Stay alive until every thread has taken its connection back.
                    go.recv().unwrap();
                });
            }));
        }
        // One at a time: every thread puts, then every thread takes, in the same order,
        // so a thread sharing a stack finds the later threads' connections on top of its own.
        for turn in &turns {
            turn.send(()).unwrap();
            assert_eq!(done.recv().unwrap(), None);
        }
        for (i, turn) in turns.iter().enumerate() {
            turn.send(()).unwrap();
            assert_eq!(done.recv().unwrap(), Some(true), "thread {i} got no connection, or another runtime's");
        }
        for turn in &turns {
            turn.send(()).unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn the_cap_counts_open_connections_until_they_close() {
        let limit = IdleConns::new(Duration::from_secs(60), 1, 2).limit().clone();
        let (a, b) = (limit.reserve(), limit.reserve());
        assert!(matches!((&a, &b), (Ok(Some(_)), Ok(Some(_)))));
        assert!(limit.reserve().is_err(), "at the cap");
        drop(a);
        assert!(matches!(limit.reserve(), Ok(Some(_))), "a closed connection makes room");
        let unlimited = IdleConns::new(Duration::from_secs(60), 1, 0).limit().clone();
        assert!(matches!(unlimited.reserve(), Ok(None)), "no cap: nothing counted");
    }
}
