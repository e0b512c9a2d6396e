//! The preview-token key: `[admin] preview_key_file`, or `preview.key` beside the
//! state file, generated once (32 random bytes from the OS, hex, mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use switchyard_config::Config;
use switchyard_proxy::preview::PreviewKey;

/// Where the key comes from for this config.
pub(crate) fn path(config: &Config) -> (PathBuf, bool) {
    match &config.admin.preview_key_file {
        Some(p) => (p.clone(), false),
        None => {
            let dir = config.state.file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            (dir.join("preview.key"), true)
        }
    }
}

/// Reads the key, creating the generated one on first use. Errors name the file.
pub(crate) fn load_or_create(config: &Config) -> Result<Arc<PreviewKey>, String> {
    let (path, generated) = path(config);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if generated && e.kind() == std::io::ErrorKind::NotFound => create(&path)?,
        Err(e) => return Err(format!("preview key {}: cannot read: {e}", path.display())),
    };
    let trimmed = bytes.trim_ascii().to_vec();
    PreviewKey::new(trimmed)
        .map(Arc::new)
        .ok_or_else(|| format!("preview key {}: needs at least 16 bytes", path.display()))
}

/// Cluster mode without `preview_key_file`: the key every replica uses is the one
/// under `PREFIX/preview-key` (the first replica's, stored create-only). It is
/// mirrored in the generated file, so a restart while the store is down uses it.
impl crate::controller::Controller {
    pub(crate) fn share_preview_key(&mut self, stored: Option<Vec<u8>>) {
        let (path, generated) = path(&self.config);
        if !generated && stored.as_deref().is_some_and(|b| b.trim_ascii() != self.preview_key.bytes()) {
            tracing::warn!(
                "cluster: this replica's preview_key_file differs from the key other replicas share (PREFIX/preview-key): its preview tokens do not verify elsewhere, and theirs not here"
            );
        }
        let Some(sh) = self.shared.as_ref().filter(|_| generated) else { return };
        let shared = match stored {
            Some(bytes) => bytes,
            None => match sh.store.share_preview_key(self.preview_key.bytes()) {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::warn!("cluster: cannot share the preview token key yet: {e}");
                    return;
                }
            },
        };
        let shared = shared.trim_ascii().to_vec();
        if shared == self.preview_key.bytes() {
            return;
        }
        let Some(key) = PreviewKey::new(shared.clone()).map(Arc::new) else {
            switchyard_metrics::cluster_error("unreadable_value");
            tracing::error!("cluster: ignoring the shared preview token key: shorter than 16 bytes");
            return;
        };
        if let Err(e) = replace(&path, &shared) {
            tracing::warn!("cluster: the shared preview token key is in use but not saved: {e}");
        }
        self.publisher.publish(self.publisher.current().with_preview_key(key.clone()));
        self.preview_key = key;
        tracing::info!("cluster: using the preview token key shared by the cluster");
    }
}

/// Overwrites the generated key file atomically (temp file, 0600, rename).
fn replace(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let err = |e: std::io::Error| format!("preview key {}: cannot write: {e}", path.display());
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Writes a new key file (it must not exist), mode 0600, synced.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes).and_then(|()| f.sync_all())
}

fn create(path: &Path) -> Result<Vec<u8>, String> {
    let err = |e: std::io::Error| format!("preview key {}: cannot create: {e}", path.display());
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    write_new(path, hex.as_bytes()).map_err(err)?;
    tracing::info!(path = %path.display(), "generated a preview token key");
    Ok(hex.into_bytes())
}
