//! Persistence that scales with the change, not with the number of services: a
//! snapshot of the whole state (the state file, written at start, on reload and
//! now and then) plus a journal of per-service changes since it, one synced line
//! per change. The snapshot holds the sequence number `S` of the last change in
//! it; the changes after it are in `FILE.journal-S`, numbered `S+1, S+2, …`.
//! Writing a new snapshot starts a new journal and only then removes the old one,
//! so a crash at any point leaves a snapshot and the one journal that continues it.

mod delta;
mod journal;

use crate::state::{self, ServiceState, State, StateError};
pub(crate) use journal::Change;
use journal::Record;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Journal bytes below which a snapshot is never rewritten (past it, once the
/// journal is twice the snapshot's size: each change then costs its own line plus
/// at most half a line of snapshot, whatever the number of services).
const COMPACT_MIN: u64 = 1 << 20;

/// The snapshot file and its journal.
pub(crate) struct Store {
    snapshot: PathBuf,
    /// The sequence number the snapshot on disk holds (names the journal).
    base: u64,
    /// The last sequence number written.
    seq: u64,
    file: Option<File>,
    journal_len: u64,
    snapshot_len: u64,
    compact_min: u64,
    /// A failed write or sync may have left part of a line that could not be cut: the
    /// next change writes a snapshot first.
    unsure: bool,
    /// A record written and not synced yet: its sequence number and length.
    pending: Option<(u64, u64)>,
    /// The last sync failed (none has succeeded since).
    sync_failed: bool,
    /// Tests: what `sync` does instead of syncing.
    #[cfg(test)]
    pub(crate) sync_fault: Option<Box<dyn FnMut() -> std::io::Result<()> + Send>>,
}

impl Store {
    /// Reads the snapshot and replays its journal. A torn last line (a crash in the
    /// middle of an append) is cut off and logged; any other damage is an error.
    pub(crate) fn open(path: &Path) -> Result<(Store, State), StateError> {
        let (mut state, base) = state::load(path)?;
        let mut store = Store::fresh(path);
        store.base = base;
        store.seq = base;
        store.snapshot_len = std::fs::metadata(path).map_or(0, |m| m.len());
        let jpath = store.journal_path();
        let corrupt = |message: String| StateError::Corrupt { path: jpath.clone(), message };
        let bytes = match std::fs::read(&jpath) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StateError::Unreadable { path: jpath.clone(), message: e.to_string() }),
        };
        let contents = journal::decode(&bytes).map_err(corrupt)?;
        for Record { seq, changes } in &contents.records {
            if *seq != store.seq + 1 {
                return Err(corrupt(format!("record {seq} follows record {}", store.seq)));
            }
            for change in changes {
                replay(&mut state, change).map_err(|e| corrupt(format!("record {seq}: {e}")))?;
            }
            store.seq = *seq;
        }
        store.journal_len = contents.sound_len;
        if let Some(torn) = contents.torn {
            let cut = bytes.len() as u64 - contents.sound_len;
            tracing::warn!(journal = %jpath.display(), records = contents.records.len(), "state journal: {torn}; cut {cut} bytes off its end (a write a crash interrupted; it was never acknowledged)");
            let f = OpenOptions::new().write(true).open(&jpath);
            f.and_then(|f| f.set_len(contents.sound_len).and_then(|()| f.sync_all()))
                .map_err(|e| StateError::Write { path: jpath.clone(), message: e.to_string() })?;
        }
        Ok((store, state))
    }

    /// A store that ignores what is on disk (`--reset-state`): the first snapshot replaces it.
    pub(crate) fn fresh(path: &Path) -> Store {
        Store {
            snapshot: path.into(),
            base: 0,
            seq: 0,
            file: None,
            journal_len: 0,
            snapshot_len: 0,
            compact_min: compact_min(),
            unsure: false,
            pending: None,
            sync_failed: false,
            #[cfg(test)]
            sync_fault: None,
        }
    }

    /// Removes journals of other snapshots: one a crash kept from being removed,
    /// or those a reset left behind.
    pub(crate) fn remove_stale_journals(&self) {
        let current = self.journal_path();
        let Some(prefix) =
            journal_path(&self.snapshot, 0).file_name().map(|n| n.to_string_lossy().trim_end_matches('0').to_owned())
        else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(state::folder(&self.snapshot)) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale =
                name.strip_prefix(&prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if stale && Some(entry.file_name().as_os_str()) != current.file_name() {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(journal = %entry.path().display(), "removed the journal of an older state snapshot")
                    }
                    Err(e) => {
                        tracing::warn!(journal = %entry.path().display(), error = %e, "cannot remove an old state journal")
                    }
                }
            }
        }
    }

    fn journal_path(&self) -> PathBuf {
        journal_path(&self.snapshot, self.base)
    }

    /// Writes the whole state as the new snapshot and starts an empty journal after it.
    pub(crate) fn save_all(&mut self, state: &State) -> Result<(), StateError> {
        let old = self.journal_path();
        let next = journal_path(&self.snapshot, self.seq);
        // Left over from an earlier life (a reset); this snapshot's journal starts empty.
        match std::fs::remove_file(&next) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StateError::Write { path: next, message: e.to_string() });
            }
            _ => {}
        }
        self.file = None;
        self.snapshot_len = state::save(&self.snapshot, state, self.seq)?;
        self.base = self.seq;
        self.journal_len = 0;
        self.unsure = false;
        if old != next
            && let Err(e) = std::fs::remove_file(&old)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(journal = %old.display(), error = %e, "cannot remove the journal of the previous snapshot (harmless: it is not read again)");
        }
        Ok(())
    }

    /// Whether the last sync failed and none has succeeded since.
    pub(crate) fn sync_failing(&self) -> bool {
        self.sync_failed
    }

    /// Whether the next change must write a snapshot first (see `unsure`).
    pub(crate) fn unsure(&self) -> bool {
        self.unsure
    }

    /// Writes the change of one service from `before` to `after` (see `write`).
    pub(crate) fn write_one(
        &mut self,
        service: &str,
        before: &ServiceState,
        after: &ServiceState,
    ) -> Result<(), StateError> {
        self.write(vec![update(service, before, after)])
    }

    /// Appends one commit's changes as one record and syncs it. On error nothing
    /// is recorded (a partial line is cut off again).
    pub(crate) fn append(&mut self, changes: Vec<Change>) -> Result<(), StateError> {
        self.write(changes)?;
        self.sync()
    }

    /// Writes one commit's changes as one record, not synced yet: the caller may
    /// act on it (publish) before `sync`, and must call `sync` before it answers.
    /// `write` catches what a user can cause (a missing folder, no permission, a
    /// full disk: ext4, xfs and tmpfs reserve the blocks at `write`); on error nothing is
    /// recorded (a partial line is cut off again).
    pub(crate) fn write(&mut self, changes: Vec<Change>) -> Result<(), StateError> {
        let path = self.journal_path();
        let err = |e: std::io::Error| StateError::Write { path: path.clone(), message: e.to_string() };
        if self.pending.is_some() {
            return Err(err(std::io::Error::other("a journal record is written but not synced yet")));
        }
        let record = Record { seq: self.seq + 1, changes };
        let line = journal::encode(&record).map_err(|e| err(std::io::Error::other(e)))?;
        if self.file.is_none() {
            let f = OpenOptions::new().create(true).append(true).open(&path).map_err(err)?;
            // The file's name must survive a crash as well as its contents.
            state::sync_folder(state::folder(&path)).map_err(err)?;
            self.file = Some(f);
        }
        let Some(f) = self.file.as_mut() else { return Err(err(std::io::Error::other("journal not open"))) };
        if let Err(e) = f.write_all(&line) {
            self.take_back();
            return Err(err(e));
        }
        self.pending = Some((record.seq, line.len() as u64));
        Ok(())
    }

    /// Makes the record `write` left durable. On error it is taken back: the
    /// journal ends where it did before, as if the change never happened.
    pub(crate) fn sync(&mut self) -> Result<(), StateError> {
        let path = self.journal_path();
        let Some((seq, len)) = self.pending.take() else { return Ok(()) };
        let synced = match self.file.as_mut() {
            #[cfg(test)]
            Some(_) if self.sync_fault.is_some() => self.sync_fault.as_mut().map_or(Ok(()), |fault| fault()),
            Some(f) => f.sync_data(),
            None => Err(std::io::Error::other("journal not open")),
        };
        self.sync_failed = synced.is_err();
        if let Err(e) = synced {
            self.take_back();
            return Err(StateError::Write { path, message: e.to_string() });
        }
        self.seq = seq;
        self.journal_len += len;
        Ok(())
    }

    /// Cuts whatever part of an unsynced record got written, or gives up on this
    /// file (the next change writes a snapshot first).
    fn take_back(&mut self) {
        let cut = self.file.as_mut().map(|f| f.set_len(self.journal_len).and_then(|()| f.sync_data()));
        if !matches!(cut, Some(Ok(()))) {
            self.unsure = true;
            self.file = None;
        }
    }

    /// Whether the journal has grown enough to be folded into a new snapshot.
    pub(crate) fn wants_snapshot(&self) -> bool {
        self.journal_len > self.compact_min.max(self.snapshot_len.saturating_mul(2))
    }
}

/// Takes the state file for this process: an exclusive lock on `FILE.lock` beside
/// it, held while the returned file is open (the OS drops it when the process dies,
/// kill -9 included). A second switchyard on the same state file would otherwise
/// fold the first one's journal into a snapshot of its own and remove it.
pub fn lock(path: &Path) -> Result<File, String> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let lock = path.with_file_name(name);
    let fail =
        |e: std::io::Error| format!("state file {}: cannot take its lock {}: {e}", path.display(), lock.display());
    std::fs::create_dir_all(state::folder(path)).map_err(fail)?;
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&lock).map_err(fail)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "state file {} is in use by another switchyard (it holds {}); stop it first, or give this one its own [state] file",
            path.display(),
            lock.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(fail(e)),
    }
}

/// The change of one service from `before` to `after`.
pub(crate) fn update(service: &str, before: &ServiceState, after: &ServiceState) -> Change {
    Change::Update { service: service.into(), delta: delta::Delta::between(before, after) }
}

/// Applies one journaled change to the state read so far.
fn replay(state: &mut State, change: &Change) -> Result<(), String> {
    match change {
        Change::Update { service, delta } => {
            let st = state.services.get_mut(service).ok_or_else(|| format!("no service {service:?} to update"))?;
            delta.apply(st).map_err(|e| format!("{service}: {e}"))
        }
        Change::Add { service, state: st } => match state.services.insert(service.clone(), (**st).clone()) {
            None => Ok(()),
            Some(_) => Err(format!("service {service:?} added twice")),
        },
        Change::Remove { service } => match state.services.remove(service) {
            Some(_) => Ok(()),
            None => Err(format!("no service {service:?} to remove")),
        },
    }
}

/// The journal continuing the snapshot at `path` that holds sequence `seq`.
fn journal_path(path: &Path, seq: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".journal-{seq}"));
    path.with_file_name(name)
}

/// `COMPACT_MIN`, or `SWITCHYARD_JOURNAL_COMPACT_BYTES` (tests use it to snapshot often).
fn compact_min() -> u64 {
    std::env::var("SWITCHYARD_JOURNAL_COMPACT_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(COMPACT_MIN)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
