//! The state: per service its current traffic, version, undo stack, history and
//! what the config file said at the last apply; and its snapshot file, written
//! atomically (changes between snapshots go to the journal, see `store`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use switchyard_config::Traffic;

/// Events kept per service (newest last).
pub const HISTORY_LIMIT: usize = 200;

/// Format version of the file, so a future layout can migrate it.
const FORMAT: u32 = 1;

/// Everything the state file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// File format version.
    #[serde(default = "format")]
    pub format: u32,
    /// Per service, by name.
    pub services: BTreeMap<String, ServiceState>,
}

fn format() -> u32 {
    FORMAT
}

impl Default for State {
    fn default() -> Self {
        State { format: FORMAT, services: BTreeMap::new() }
    }
}

/// One service's runtime traffic state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceState {
    /// Incremented by exactly one on every traffic change.
    pub version: u64,
    /// The traffic in force.
    pub traffic: Traffic,
    /// `[service.traffic]` as the file said at the last apply.
    pub config_traffic: Traffic,
    /// Traffic before each change not yet rolled back (latest last). Entries are
    /// shared, so a change's copy of the state costs no deep clone and its journal
    /// delta compares them by pointer first (`store/delta.rs`).
    #[serde(default)]
    pub undo: Vec<Arc<Traffic>>,
    /// Traffic changes, oldest first, at most `HISTORY_LIMIT` (shared like `undo`).
    #[serde(default)]
    pub history: Vec<Arc<Event>>,
    /// The running progressive rollout, or the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<crate::rollout::Rollout>>,
}

impl ServiceState {
    /// A service seen for the first time, at the file's traffic.
    pub(crate) fn fresh(traffic: Traffic) -> ServiceState {
        ServiceState {
            version: 1,
            traffic: traffic.clone(),
            config_traffic: traffic,
            undo: vec![],
            history: vec![],
            rollout: None,
        }
    }

    /// Where a rollback goes: the index in `undo` of the newest entry that
    /// differs from the traffic now (the ones after it would be no-ops).
    pub(crate) fn rollback_index(&self) -> Option<usize> {
        self.undo.iter().rposition(|t| **t != self.traffic)
    }

    /// The rollout still holding the service (progressing or paused).
    pub(crate) fn running(&self) -> Option<&crate::rollout::Rollout> {
        self.rollout.as_deref().filter(|r| r.phase.is_running())
    }
}

impl ServiceState {
    /// Appends an event, dropping the oldest beyond the limits.
    pub(crate) fn record(&mut self, event: Event) {
        self.history.push(Arc::new(event));
        if self.history.len() > HISTORY_LIMIT {
            let excess = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..excess);
        }
        if self.undo.len() > HISTORY_LIMIT {
            let excess = self.undo.len() - HISTORY_LIMIT;
            self.undo.drain(..excess);
        }
    }
}

/// What kind of change an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 100 % to one pool.
    Switch,
    /// A weighted split.
    Weights,
    /// Back to the traffic before the latest change.
    Rollback,
    /// The config file's `[traffic]` changed and won.
    Config,
    /// A progressive rollout moved a step.
    RolloutStep,
    /// A rollout breached its analysis and rolled back.
    AutoRollback,
    /// An operator aborted a rollout; traffic went back to where it started.
    RolloutAbort,
}

impl Kind {
    /// The label used in metrics and history.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Switch => "switch",
            Kind::Weights => "weights",
            Kind::Rollback => "rollback",
            Kind::Config => "config",
            Kind::RolloutStep => "rollout_step",
            Kind::AutoRollback => "auto_rollback",
            Kind::RolloutAbort => "rollout_abort",
        }
    }
}

/// One traffic change, as the history API shows it. `Eq` lets two `Arc`s of the
/// same event compare equal by pointer, without comparing their fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The service version this change produced.
    pub version: u64,
    /// RFC 3339 time.
    pub at: String,
    /// What kind of change.
    pub kind: Kind,
    /// Traffic before.
    pub from: Traffic,
    /// Traffic after.
    pub to: Traffic,
    /// Token name, `api`, `config` or `rollout`.
    pub actor: String,
    /// Free text from the operator.
    pub reason: String,
    /// Whether a health gate was overridden.
    pub forced: bool,
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// It exists but cannot be read.
    #[error("state file {path}: cannot read: {message}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// It is not a state file of this format.
    #[error("state file {path} is corrupt: {message} (fix or remove it, or start with --reset-state)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// It could not be written.
    #[error("state file {path}: cannot write: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
}

/// The snapshot as written: the state and the sequence number of the last journal
/// record it holds (records after it are in the journal it names, see `store`).
#[derive(Serialize)]
struct SnapshotOut<'a> {
    format: u32,
    seq: u64,
    services: &'a BTreeMap<String, ServiceState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotIn {
    #[serde(default = "format")]
    format: u32,
    #[serde(default)]
    seq: u64,
    services: BTreeMap<String, ServiceState>,
}

/// Reads the state file and its sequence number; a missing file is an empty state at 0.
pub(crate) fn load(path: &Path) -> Result<(State, u64), StateError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((State::default(), 0)),
        Err(e) => {
            return Err(StateError::Unreadable { path: path.into(), message: e.to_string() });
        }
    };
    let snap: SnapshotIn =
        serde_json::from_slice(&text).map_err(|e| StateError::Corrupt { path: path.into(), message: e.to_string() })?;
    if snap.format != FORMAT {
        return Err(StateError::Corrupt { path: path.into(), message: format!("unknown format {}", snap.format) });
    }
    Ok((State { format: snap.format, services: snap.services }, snap.seq))
}

/// Writes the state at sequence `seq`: temp file, fsync, rename over the old one,
/// fsync the folder. A crash at any point leaves either the old file or the new
/// one, whole. Returns the bytes written.
pub(crate) fn save(path: &Path, state: &State, seq: u64) -> Result<u64, StateError> {
    let err = |e: std::io::Error| StateError::Write { path: path.into(), message: e.to_string() };
    let dir = folder(path);
    std::fs::create_dir_all(dir).map_err(err)?;
    let snap = SnapshotOut { format: state.format, seq, services: &state.services };
    let mut json = serde_json::to_vec_pretty(&snap).map_err(|e| err(std::io::Error::other(e)))?;
    json.push(b'\n');
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(&json).and_then(|()| f.sync_all()));
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        // A half-written temp file (disk full) must not keep the disk full.
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    // Renamed: this is the snapshot now, whatever happens next.
    if let Err(e) = sync_folder(dir) {
        tracing::warn!(path = %path.display(), error = %e, "state file written, but its folder could not be synced");
    }
    Ok(json.len() as u64)
}

/// The folder a file is in (`.` for a bare name).
pub(crate) fn folder(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Makes a folder's entries (a rename, a new file) durable.
pub(crate) fn sync_folder(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        assert_eq!(load(&path).unwrap(), (State::default(), 0));
        let mut s = State::default();
        let t = Traffic::all_to("blue", ["blue", "green"]);
        s.services.insert("shop".into(), ServiceState { version: 3, ..ServiceState::fresh(t) });
        save(&path, &s, 7).unwrap();
        assert_eq!(load(&path).unwrap(), (s, 7));
    }

    #[test]
    fn corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()) && e.contains("corrupt"), "{e}");
    }
}
