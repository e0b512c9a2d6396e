//! A plain GET through the HTTP/1 path allocates nothing once warm: counted with a
//! counting global allocator on the proxy's own thread (a count, not a time, so it
//! is stable on shared machines). Client and backend are blocking sockets on other
//! threads, outside the count.

#![allow(unsafe_code, clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use switchyard_proxy::{RoutingTable, ServerOptions};
use switchyard_test_support::config_from;

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);
thread_local! {
    static PROXY_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn counts() -> bool {
    ARMED.load(Ordering::Relaxed) && PROXY_THREAD.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counts() {
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
        if counts() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A backend answering every request on a connection with a fixed 5-byte body.
fn backend() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut have = 0;
                loop {
                    match conn.read(&mut buf[have..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => have += n,
                    }
                    while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        if conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").is_err() {
                            return;
                        }
                        buf.copy_within(end + 4..have, 0);
                        have -= end + 4;
                    }
                }
            });
        }
    });
    addr
}

/// One GET on `conn`, read to the end of its 5-byte body.
fn get(conn: &mut TcpStream, buf: &mut [u8]) {
    conn.write_all(b"GET /a?b=1 HTTP/1.1\r\nHost: app\r\nAccept: */*\r\nUser-Agent: alloc-test\r\n\r\n").unwrap();
    let mut have = 0;
    while !buf[..have].ends_with(b"hello") {
        let n = conn.read(&mut buf[have..]).unwrap();
        assert!(n > 0, "the proxy closed the connection");
        have += n;
    }
    assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&buf[..have]));
}

#[test]
fn a_plain_get_allocates_nothing_on_the_proxy_once_warm() {
    let config = config_from(&format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[[service]]\nname = \"app\"\n[service.traffic]\nactive = \"blue\"\n[service.pools.blue]\nbackends = [\"{}\"]\n",
        backend()
    ));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        PROXY_THREAD.with(|p| p.set(true));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (_publisher, router) = switchyard_proxy::channel(RoutingTable::build(&config, None, 1));
            let opts = ServerOptions::from_listener(&config.listener);
            switchyard_proxy::serve(listener, router, opts, std::future::pending()).await;
        });
    });
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 4096];
    for _ in 0..200 {
        get(&mut conn, &mut buf);
    }
    ARMED.store(true, Ordering::SeqCst);
    let n = 2000;
    for _ in 0..n {
        get(&mut conn, &mut buf);
    }
    ARMED.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(allocations, 0, "{allocations} allocations in {n} requests on the proxy's thread");
}
