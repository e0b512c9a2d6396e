//! Signals: SIGHUP becomes a reload command; SIGTERM/SIGINT start the graceful
//! shutdown. (`--watch` is in `watch.rs`.)

use switchyard_control::{ControlHandle, ReloadSource};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

/// A shutdown switch many tasks can wait on.
pub struct Stop {
    tx: watch::Sender<bool>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop { tx: watch::channel(false).0 }
    }

    /// Resolves once `trigger` has been called.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}

/// The process's signal handlers, installed first thing at start so that a
/// SIGTERM or SIGHUP that arrives while the proxy is still starting is handled
/// (a graceful stop, a reload once the control path runs), not fatal.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Every SIGHUP (including one received during start-up) re-reads the config
    /// through the control task. Returns the handlers that stop the process.
    pub fn reload_on_sighup(self, control: ControlHandle) -> Terminate {
        let mut hup = self.hup;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP received: reloading");
                reload(&control, ReloadSource::Signal).await;
            }
        });
        Terminate { term: self.term, int: self.int }
    }
}

/// SIGTERM and SIGINT.
pub struct Terminate {
    term: Signal,
    int: Signal,
}

impl Terminate {
    /// Resolves on the first SIGTERM or SIGINT.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}

pub(crate) async fn reload(control: &ControlHandle, source: ReloadSource) {
    match control.reload(source).await {
        Ok(report) => tracing::info!(generation = report.generation, source = source.as_str(), "reload applied"),
        // The control task has logged every problem already.
        Err(e) => tracing::error!(source = source.as_str(), "reload failed: {e}"),
    }
}
