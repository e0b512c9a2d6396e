//! The routing decision allocates nothing: counted with a counting global
//! allocator (a count, not a time, so it is stable on shared machines).

#![allow(unsafe_code, clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "../benches/support.rs"]
mod support;

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    // Per thread, so tests running in parallel do not count each other.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting(on: bool) {
    COUNTING.with(|c| c.set(on));
}

fn is_counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if is_counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn routing_decision_allocates_nothing_on_1000_services() {
    let (_router, proxy) = support::proxy(1000);
    let requests: Vec<_> = [0, 1, 499, 999].iter().map(|i| support::request(i + 1)).collect();
    // Warm up thread-locals (the random source) outside the count.
    for r in &requests {
        assert!(proxy.route(r).is_ok());
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    counting(true);
    let mut routed = 0;
    for _ in 0..10_000 {
        for r in &requests {
            routed += usize::from(proxy.route(r).is_ok());
        }
    }
    counting(false);
    assert_eq!(routed, 40_000);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst) - before, 0, "allocations in 40,000 routing decisions");
}

#[test]
fn the_counter_does_count() {
    // Guards the test above against a counter that cannot see allocations.
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    counting(true);
    let v = std::hint::black_box(vec![1u8; 32]);
    counting(false);
    drop(v);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > before);
}
