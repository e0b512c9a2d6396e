//! The HTTP/1 path's upstream connections: a bare TCP stream, kept on the same
//! per-backend, per-worker idle stacks and under the same `max_upstream_connections`
//! as hyper's (`idle.rs`, `upstream::obtain_with`). An idle one holds no buffer.

use crate::idle::{self, IdleConns, Slot};
use crate::upstream::{self, Obtain, Target};
use std::io::ErrorKind;
use tokio::net::TcpStream;
use tokio::runtime::Id;

/// One upstream connection of the HTTP/1 path.
pub(crate) struct Raw {
    pub(crate) stream: TcpStream,
    /// The runtime whose IO driver the socket is registered with.
    pub(crate) runtime: Option<Id>,
    _slot: Option<Slot>,
}

impl Raw {
    /// A connection just opened on this runtime, counted in `slot`.
    pub(crate) fn new(stream: TcpStream, slot: Option<Slot>) -> Raw {
        Raw { stream, runtime: idle::runtime(), _slot: slot }
    }

    /// Open and quiet: the backend neither closed it nor sent anything unasked.
    /// Asks the socket itself (`MSG_PEEK`), not tokio's readiness, which the last
    /// short read cleared (`io.rs`) and which the driver may not have set again yet
    /// for a close that arrived since.
    pub(crate) fn alive(&self) -> bool {
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        matches!(socket2::SockRef::from(&self.stream).peek(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock)
    }
}

/// The newest idle connection of runtime `me` that is still usable.
fn checkout(conns: &IdleConns, me: Id) -> Option<Raw> {
    while let Some((raw, since)) = conns.take_raw(me) {
        if since.elapsed() < conns.idle_timeout() && raw.alive() {
            return Some(raw);
        }
    }
    None
}

/// A connection to `to` (and whether it was reused); `fresh` skips idle ones.
pub(crate) async fn obtain(to: &Target<'_>, fresh: bool) -> Result<(Raw, bool), Obtain> {
    upstream::obtain_with(to, fresh, true, checkout, |slot| async move {
        let stream = upstream::dial(to.addr, to.timeouts.connect).await?;
        Ok(Raw::new(stream, slot))
    })
    .await
}
