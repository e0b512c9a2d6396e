//! `--watch`: reload when the config file changes — written in place, replaced by
//! rename (editors, config tools), or re-pointed through symlinks (a Kubernetes
//! ConfigMap swaps its `..data` symlink; the file itself is never written).
//!
//! Both the folder of the path as given and the folder of the file it resolves
//! to are watched; after events settle (notify-debouncer-full, 200 ms) the file is
//! resolved and read again, and only a changed path or content reloads.

use super::signals::reload;
use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use std::path::{Path, PathBuf};
use std::time::Duration;
use switchyard_control::{ControlHandle, ReloadSource};

/// Where the file resolves to, and what it says; `None` while it is missing.
type Fingerprint = Option<(PathBuf, Vec<u8>)>;

fn fingerprint(config: &Path) -> Fingerprint {
    let target = std::fs::canonicalize(config).ok()?;
    let text = std::fs::read(&target).ok()?;
    Some((target, text))
}

fn folder(path: &Path) -> PathBuf {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned()
}

/// The folder of the file the config path resolves to (through every symlink),
/// when it is not the (resolved) folder already watched.
fn target_folder(config: &Path, watched: Option<&Path>) -> Option<PathBuf> {
    std::fs::canonicalize(config).ok().map(|t| folder(&t)).filter(|t| Some(t.as_path()) != watched)
}

/// Starts watching; logs and gives up (serving on) when the OS refuses.
pub fn spawn_watch(config: &Path, control: ControlHandle) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = move |result: DebounceEventResult| {
        // Reading the file for a reload is itself an event; only writes count.
        let writes = result
            .is_ok_and(|events| events.iter().any(|e| e.kind.is_create() || e.kind.is_modify() || e.kind.is_remove()));
        if writes {
            let _ = tx.send(());
        }
    };
    let mut debouncer = match new_debouncer(Duration::from_millis(200), None, handler) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the config file");
            return;
        }
    };
    let config = config.to_owned();
    let dir = folder(&config);
    if let Err(e) = debouncer.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::error!(error = %e, dir = %dir.display(), "cannot watch the config folder");
        return;
    }
    let watched = std::fs::canonicalize(&dir).ok();
    let mut target = target_folder(&config, watched.as_deref());
    if let Some(t) = &target
        && let Err(e) = debouncer.watch(t, RecursiveMode::NonRecursive)
    {
        tracing::warn!(error = %e, dir = %t.display(), "cannot watch the folder the config file resolves to");
    }
    let mut last = fingerprint(&config);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Follow the file when a symlink now points into another folder.
            let now_target = target_folder(&config, watched.as_deref());
            if now_target != target {
                if let Some(old) = &target {
                    let _ = debouncer.unwatch(old);
                }
                if let Some(t) = &now_target {
                    let _ = debouncer.watch(t, RecursiveMode::NonRecursive);
                }
                target = now_target;
            }
            let now = fingerprint(&config);
            // Missing mid-update, or unchanged (a read, a chmod, another file): nothing to do.
            if now.is_none() || now == last {
                continue;
            }
            last = now;
            tracing::info!("config file changed: reloading");
            reload(&control, ReloadSource::Watch).await;
        }
    });
}
