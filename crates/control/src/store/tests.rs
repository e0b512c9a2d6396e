use super::*;
use crate::state::{Event, HISTORY_LIMIT, Kind};
use switchyard_config::Traffic;

fn state(services: &[&str]) -> State {
    let mut s = State::default();
    for name in services {
        s.services.insert((*name).into(), ServiceState::fresh(Traffic::all_to("blue", ["blue", "green"])));
    }
    s
}

/// One switch of `name` in `s`, journaled.
fn switch(store: &mut Store, s: &mut State, name: &str) {
    let before = s.services[name].clone();
    let mut after = before.clone();
    let to = if after.traffic.weight("blue").0 > 0 { "green" } else { "blue" };
    let target = Traffic::all_to(to, ["blue", "green"]);
    after.undo.push(std::sync::Arc::new(after.traffic.clone()));
    after.version += 1;
    let event = Event {
        version: after.version,
        at: "2026-12-02T00:00:00Z".into(),
        kind: Kind::Switch,
        from: after.traffic.clone(),
        to: target.clone(),
        actor: "api".into(),
        reason: format!("switch {}", after.version),
        forced: false,
    };
    after.traffic = target;
    after.record(event);
    store.write_one(name, &before, &after).unwrap();
    store.sync().unwrap();
    s.services.insert(name.into(), after);
}

/// A temp folder with a state file holding service `a`, and its store.
fn fresh_with_a() -> (tempfile::TempDir, PathBuf, Store, State) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let (mut store, _) = Store::open(&path).unwrap();
    let s = state(&["a"]);
    store.save_all(&s).unwrap();
    (dir, path, store, s)
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn changes_replay_on_the_snapshot_across_snapshots_and_the_history_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let (mut store, loaded) = Store::open(&path).unwrap();
    assert_eq!(loaded, State::default());
    let mut s = state(&["a", "b"]);
    store.save_all(&s).unwrap();
    for i in 0..320 {
        switch(&mut store, &mut s, if i % 3 == 0 { "b" } else { "a" });
        if i == 100 {
            store.save_all(&s).unwrap();
        }
    }
    assert_eq!(s.services["a"].history.len(), HISTORY_LIMIT);
    let (store2, replayed) = Store::open(&path).unwrap();
    assert_eq!(replayed, s);
    assert_eq!(store2.seq, 320);
    assert_eq!(files(dir.path()), ["state.json", "state.json.journal-101"], "the old journal is gone");
    // A line per change, not a copy of the history: well under 1 KB each.
    assert!(store2.journal_len < (320 - 101) * 1024, "{}", store2.journal_len);
}

#[test]
fn a_torn_tail_is_cut_and_the_next_change_follows_it() {
    let (_dir, path, mut store, mut s) = fresh_with_a();
    switch(&mut store, &mut s, "a");
    let kept = s.clone();
    switch(&mut store, &mut s, "a");
    let journal = store.journal_path();
    let bytes = std::fs::read(&journal).unwrap();
    std::fs::write(&journal, &bytes[..bytes.len() - 10]).unwrap();
    let (mut store, replayed) = Store::open(&path).unwrap();
    assert_eq!(replayed, kept);
    let mut s = replayed;
    switch(&mut store, &mut s, "a");
    assert_eq!(Store::open(&path).unwrap().1, s, "appends after the cut replay");
}

#[test]
fn damage_before_the_end_or_a_gap_is_refused_naming_the_journal() {
    let (_dir, path, mut store, mut s) = fresh_with_a();
    for _ in 0..3 {
        switch(&mut store, &mut s, "a");
    }
    let journal = store.journal_path();
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let damaged = format!("{}\n{}\n{}\n", lines[0], lines[1].replace("switch", "swatch"), lines[2]);
    std::fs::write(&journal, damaged).unwrap();
    let e = Store::open(&path).err().unwrap().to_string();
    assert!(e.contains("journal-0") && e.contains("line 2"), "{e}");
    std::fs::write(&journal, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    let e = Store::open(&path).err().unwrap().to_string();
    assert!(e.contains("record 3 follows record 1"), "{e}");
}

#[test]
fn a_crash_between_snapshot_and_cleanup_leaves_a_journal_that_is_not_read_and_is_removed() {
    let (dir, path, mut store, mut s) = fresh_with_a();
    switch(&mut store, &mut s, "a");
    let old = store.journal_path();
    let old_bytes = std::fs::read(&old).unwrap();
    store.save_all(&s).unwrap();
    std::fs::write(&old, old_bytes).unwrap(); // as if the removal never happened
    switch(&mut store, &mut s, "a");
    let (opened, replayed) = Store::open(&path).unwrap();
    assert_eq!(replayed, s);
    opened.remove_stale_journals();
    assert_eq!(files(dir.path()), ["state.json", "state.json.journal-1"]);
}

#[test]
fn a_reset_store_never_replays_an_old_journal() {
    let (_dir, path, mut store, mut s) = fresh_with_a();
    switch(&mut store, &mut s, "a");
    let mut fresh = Store::fresh(&path);
    let reset = state(&["a"]);
    fresh.save_all(&reset).unwrap();
    assert_eq!(Store::open(&path).unwrap().1, reset);
}

#[test]
fn a_record_whose_sync_fails_is_taken_back_and_the_next_change_follows_it() {
    let (_dir, path, mut store, mut s) = fresh_with_a();
    switch(&mut store, &mut s, "a");
    let kept = s.clone();
    let len = store.journal_len;
    let before = s.services["a"].clone();
    let mut after = before.clone();
    after.version += 1;
    after.traffic = Traffic::all_to("blue", ["blue", "green"]);
    store.write_one("a", &before, &after).unwrap();
    assert!(std::fs::metadata(store.journal_path()).unwrap().len() > len, "written before the sync");
    store.sync_fault = Some(Box::new(|| Err(std::io::Error::other("EIO"))));
    let e = store.sync().unwrap_err().to_string();
    assert!(e.contains("EIO") && e.contains("journal-0"), "{e}");
    assert_eq!((store.seq, store.journal_len), (1, len));
    assert_eq!(std::fs::metadata(store.journal_path()).unwrap().len(), len, "the unsynced record is cut off");
    assert_eq!(Store::open(&path).unwrap().1, kept);
    store.sync_fault = None;
    switch(&mut store, &mut s, "a");
    let (reopened, replayed) = Store::open(&path).unwrap();
    assert_eq!((replayed, reopened.seq), (s, 2), "the next change takes the sequence number back");
}
