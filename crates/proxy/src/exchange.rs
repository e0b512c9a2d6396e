//! The two clocks of one exchange with a backend (SPEC §2):
//!
//! - `timeouts.request` runs from the last request byte sent upstream until the
//!   response head arrives (→ 504), so a long upload is not cut for being long;
//! - `timeouts.idle` cuts the exchange when no byte moved in either direction for
//!   that long: during the upload, while waiting for the head (→ 504), and while
//!   the response body streams (the connection is cut).
//!
//! A request body reports its frames and its end through a shared `Progress`, the
//! only way to know, since hyper polls the body inside the connection (on another
//! task for hyper-util's client). A body-less request has none: its request timer
//! starts at once and nothing is allocated for it.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;
use switchyard_config::Timeouts;
use tokio::time::{Instant, Sleep};

/// How far a request body got; shared by the body and the exchange waiting for the answer.
#[derive(Debug)]
pub(crate) struct Progress {
    base: Instant,
    /// Microseconds after `base` of the last frame (of the end, once `done`).
    last: AtomicU64,
    done: AtomicBool,
}

impl Progress {
    /// Progress of a body about to be sent; its last activity is now.
    pub(crate) fn new() -> Progress {
        Progress { base: Instant::now(), last: AtomicU64::new(0), done: AtomicBool::new(false) }
    }

    fn stamp(&self) {
        let us = u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last.store(us, Relaxed);
    }

    /// A frame of the body went upstream.
    pub(crate) fn moved(&self) {
        self.stamp();
    }

    /// The body has been sent to its end.
    pub(crate) fn finished(&self) {
        self.stamp();
        self.done.store(true, Relaxed);
    }

    /// Whether the body has been sent to its end.
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Relaxed)
    }

    fn last(&self) -> Instant {
        after(self.base, Duration::from_micros(self.last.load(Relaxed)))
    }
}

/// `t + d`, never overflowing (a deadline that far away is never reached anyway).
pub(crate) fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).or_else(|| t.checked_add(Duration::from_secs(86_400 * 365))).unwrap_or(t)
}

/// When the wait for the response head of an exchange that began at `start` ends.
///
/// Without a body both clocks run from the start. While a body is still going up
/// only `idle` applies (from its last frame); the body's end may happen on another
/// task, which does not wake the waiter, so the wait is also bounded by
/// `now + request` — when that fires the deadline is worked out again.
pub(crate) fn head_deadline(progress: Option<&Progress>, start: Instant, t: &Timeouts) -> Instant {
    let both = t.request.min(t.idle);
    match progress {
        None => after(start, both),
        Some(p) if p.done.load(Relaxed) => after(p.last(), both),
        Some(p) => after(p.last(), t.idle).min(after(Instant::now(), t.request)),
    }
}

/// Polls `sleep` towards `at`: moves it earlier at once, later only once it fired
/// (so a deadline pushed back on every frame costs nothing until then).
fn poll_sleep(mut sleep: Pin<&mut Sleep>, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
    if at < sleep.deadline() {
        sleep.as_mut().reset(at);
    }
    loop {
        ready!(sleep.as_mut().poll(cx));
        if sleep.deadline() >= at {
            return Poll::Ready(());
        }
        sleep.as_mut().reset(at);
    }
}

/// A sleep created on first use and reused after: an HTTP/1 connection keeps one
/// for all its requests, a response body from hyper-util's client makes one only
/// if it ever has to wait.
#[derive(Default)]
pub(crate) struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// Ready once `at` has passed.
    pub(crate) fn poll_until(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = self.0.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        poll_sleep(sleep.as_mut(), at, cx)
    }

    /// Keeps no task's waker (for a timer whose connection goes idle).
    pub(crate) fn park(&mut self) {
        if let Some(sleep) = &mut self.0 {
            let _ = sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        }
    }
}

/// Runs `fut` (a request through hyper-util's client) until it yields the response
/// head, or `None` once the head deadline passed.
pub(crate) async fn within<F: Future>(fut: F, progress: Option<&Progress>, t: &Timeouts) -> Option<F::Output> {
    let start = Instant::now();
    let mut fut = pin!(fut);
    let mut sleep = pin!(tokio::time::sleep_until(head_deadline(progress, start, t)));
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        poll_sleep(sleep.as_mut(), head_deadline(progress, start, t), cx).map(|()| None)
    })
    .await
}

/// The error a response body ends with when its backend went quiet for `timeouts.idle`.
#[derive(Debug)]
pub struct IdleTimeout(pub Duration);

impl std::fmt::Display for IdleTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the backend sent nothing for {:?} (timeouts.idle)", self.0)
    }
}

impl std::error::Error for IdleTimeout {}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(request: u64, idle: u64) -> Timeouts {
        Timeouts { request: Duration::from_millis(request), idle: Duration::from_millis(idle), ..Timeouts::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_body_both_clocks_run_from_the_start() {
        let start = Instant::now();
        assert_eq!(head_deadline(None, start, &timeouts(200, 500)), start + Duration::from_millis(200));
        assert_eq!(head_deadline(None, start, &timeouts(900, 500)), start + Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn the_request_clock_starts_when_the_body_ends() {
        let t = timeouts(200, 1000);
        let p = Progress::new();
        let start = Instant::now();
        tokio::time::advance(Duration::from_millis(700)).await;
        p.moved();
        // Uploading for 700 ms on a 200 ms request timeout: still fine.
        assert!(head_deadline(Some(&p), start, &t) > Instant::now());
        tokio::time::advance(Duration::from_millis(300)).await;
        p.finished();
        assert_eq!(head_deadline(Some(&p), start, &t), Instant::now() + Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_upload_runs_out_of_idle_time() {
        let t = timeouts(60_000, 200);
        let p = Progress::new();
        let start = Instant::now();
        p.moved();
        assert_eq!(head_deadline(Some(&p), start, &t), start + Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn timer_fires_at_the_deadline_it_was_last_given() {
        let mut timer = Timer::default();
        let mut cx = Context::from_waker(Waker::noop());
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        assert!(timer.poll_until(ms(100), &mut cx).is_pending());
        // Pushed back (a moving upload): the first deadline passing does not fire it.
        tokio::time::advance(Duration::from_millis(150)).await;
        assert!(timer.poll_until(ms(300), &mut cx).is_pending());
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(timer.poll_until(ms(300), &mut cx).is_pending());
        // Brought forward (the body ended): fires at the earlier time.
        assert!(timer.poll_until(ms(260), &mut cx).is_pending());
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(timer.poll_until(ms(260), &mut cx).is_ready());
    }
}
