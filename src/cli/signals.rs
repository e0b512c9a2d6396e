//! Signals and file watching: SIGHUP and `--watch` become reload commands;
//! SIGTERM/SIGINT start the graceful shutdown.

use notify::{RecursiveMode, Watcher};
use std::path::Path;
use std::time::Duration;
use switchyard_control::{ControlHandle, ReloadSource};
use tokio::signal::unix::{SignalKind, signal};
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

/// Resolves on the first SIGTERM or SIGINT.
pub async fn wait_for_terminate() {
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install SIGTERM/SIGINT handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

async fn reload(control: &ControlHandle, source: ReloadSource) {
    match control.reload(source).await {
        Ok(report) => tracing::info!(generation = report.generation, source = source.as_str(), "reload applied"),
        // The control task has logged every problem already.
        Err(e) => tracing::error!(source = source.as_str(), "reload failed: {e}"),
    }
}

/// Every SIGHUP re-reads the config through the control task.
pub fn spawn_reload_on_sighup(control: ControlHandle) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading");
            reload(&control, ReloadSource::Signal).await;
        }
    });
}

/// Watches the config file's folder (so a file replaced by rename is seen too) and
/// reloads ~200 ms after the last change to the file.
pub fn spawn_watch(config: &Path, control: ControlHandle) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let name = config.file_name().map(|n| n.to_owned());
    let dir = config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        // Reading the file for a reload is itself an event; only writes count.
        let writes = matches!(
            ev.kind,
            notify::EventKind::Create(_) | notify::EventKind::Modify(_) | notify::EventKind::Remove(_)
        );
        if writes && ev.paths.iter().any(|p| p.file_name() == name.as_deref()) {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the config file");
            return;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::error!(error = %e, dir = %dir.display(), "cannot watch the config folder");
        return;
    }
    tokio::spawn(async move {
        let _keep = watcher;
        while rx.recv().await.is_some() {
            // Debounce: editors write, rename and chmod in bursts.
            while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {}
            tracing::info!("config file changed: reloading");
            reload(&control, ReloadSource::Watch).await;
        }
    });
}
