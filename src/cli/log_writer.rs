//! Diagnostic log lines go to stderr from a thread of their own: a thread that logs
//! (a worker, the control path) only moves the formatted line into a bounded
//! queue. When stderr is not being read (a stuck pipe, a log shipper that stopped),
//! lines are dropped and counted, and the count is written once stderr takes lines
//! again, instead of the proxy stopping with them (as it did: a worker blocked in
//! `write(2)` forwards nothing). The access log works the same way.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for stderr at most; more are dropped.
const QUEUE: usize = 1024;

enum Msg {
    Line(Vec<u8>),
    /// Answered once every line queued before it is written.
    Flush(SyncSender<()>),
}

static TX: OnceLock<SyncSender<Msg>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The `MakeWriter` for `tracing_subscriber::fmt`: one line per event, queued.
pub(crate) struct Stderr;

impl Stderr {
    /// Starts the writer thread (once); without it lines are written directly.
    pub(crate) fn start() -> Stderr {
        TX.get_or_init(|| {
            // Without the thread the queue's reader is gone, and lines go straight to stderr.
            let (tx, rx) = sync_channel(QUEUE);
            let _ = std::thread::Builder::new().name("switchyard-log".into()).spawn(move || drain(&rx));
            tx
        });
        Stderr
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One event's text; queued when dropped.
pub(crate) struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let line = std::mem::take(&mut self.0);
        if line.is_empty() {
            return;
        }
        match TX.get().map(|tx| tx.try_send(Msg::Line(line))) {
            Some(Ok(())) => {}
            Some(Err(TrySendError::Full(_))) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(TrySendError::Disconnected(Msg::Line(line)))) => {
                let _ = std::io::stderr().write_all(&line);
            }
            Some(Err(TrySendError::Disconnected(Msg::Flush(_)))) | None => {}
        }
    }
}

fn drain(rx: &Receiver<Msg>) {
    let mut err = std::io::stderr();
    let say_dropped = |err: &mut std::io::Stderr| {
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(err, "switchyard: {dropped} log lines dropped: stderr was not being read");
        }
    };
    for msg in rx {
        match msg {
            Msg::Line(line) => {
                say_dropped(&mut err);
                let _ = err.write_all(&line);
            }
            Msg::Flush(done) => {
                say_dropped(&mut err);
                let _ = done.send(());
            }
        }
    }
}

/// Waits (at most `patience`) until the lines logged so far are written: called
/// before the process exits, so its last lines are not lost.
pub(crate) fn flush(patience: Duration) {
    let Some(tx) = TX.get() else { return };
    let until = Instant::now() + patience;
    let (done, wait) = sync_channel(1);
    let mut msg = Msg::Flush(done);
    loop {
        match tx.try_send(msg) {
            Ok(()) => break,
            Err(TrySendError::Full(m)) if Instant::now() < until => {
                msg = m;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
    let _ = wait.recv_timeout(until.saturating_duration_since(Instant::now()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_queued_and_flushed() {
        let writer = Stderr::start();
        let mut line = writer.make_writer();
        line.write_all(b"switchyard: log_writer test line\n").unwrap();
        drop(line);
        // Returns once the writer thread has written it (a stuck stderr would make it
        // wait the whole patience instead; the test's stderr is read by the harness).
        let started = Instant::now();
        flush(Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
