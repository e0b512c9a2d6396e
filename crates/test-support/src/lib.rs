//! switchyard-test-support (dev only): real upstream servers on `127.0.0.1:0` that
//! say who they are, an in-process proxy, and clients that keep one connection or
//! speak raw bytes. Used by the proxy's, control's, admin's and the binary's tests.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod cdp;
mod client;
mod component;
mod emfile;
mod proxy;
mod raw;
mod raw_client;
mod switching;
mod upstream;

pub use client::{Conn, raw_exchange};
pub use component::{ChannelBody, Handler, Ticker, body_channel, text};
pub use emfile::cpu_while_out_of_descriptors;
pub use proxy::{TestProxy, config_from};
pub use raw::{RawEvent, RawUpstream};
pub use raw_client::{RawConn, RawResponse};
pub use switching::Switching;
pub use upstream::Upstream;

/// Polls `cond` until it holds (every 10 ms, up to 10 s) — for state that changes
/// on another task with no event to await, such as a health checker's verdict.
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr, $($msg:tt)+) => {{
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if $cond { break; }
            if std::time::Instant::now() > deadline { panic!($($msg)+); }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }};
}
