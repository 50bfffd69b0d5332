//! The directory fsyncs of a commit and of a GC: each touched directory once, all of them
//! finished before the index transaction that depends on them, issued together rather than one
//! after another, and a failure of any one fails the operation, naming that directory.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use autosave_store::{Error, NewSnapshot, Options, SnapshotKind, Store};
use camino::{Utf8Path, Utf8PathBuf};

use crate::{Hooked, Hooks, new_store_with, random_bytes};

/// Records each directory fsync and index commit in order, holds each fsync long enough that
/// fsyncs issued together overlap, and can fail the fsync of one directory.
#[derive(Debug, Default)]
struct Syncs {
    events: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    fail: Mutex<Option<Utf8PathBuf>>,
}

impl Hooks for Syncs {
    fn sync_dir(&self, path: &Utf8Path) -> Option<std::io::Result<()>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.events.lock().unwrap().push(format!("sync_dir {path}"));
        if self.fail.lock().unwrap().as_deref() == Some(path) {
            return Some(Err(std::io::Error::other("injected fsync failure")));
        }
        None
    }
    fn after_commit(&self, _index: &Utf8Path, _durable: bool) {
        self.events.lock().unwrap().push("commit".to_owned());
    }
}

impl Syncs {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

fn store_with_syncs() -> (tempfile::TempDir, Store, std::sync::Arc<Hooked<Syncs>>) {
    let vfs = std::sync::Arc::new(Hooked(Syncs::default()));
    let (dir, store) = new_store_with(Options {
        vfs: vfs.clone(),
        ..Options::default()
    });
    (dir, store, vfs)
}

/// The fan-out directories under `objects/` that hold a blob file.
fn fanout_dirs_with_files(store: &Store) -> Vec<Utf8PathBuf> {
    let mut dirs: Vec<Utf8PathBuf> = std::fs::read_dir(store.root().join("objects"))
        .unwrap()
        .map(|e| Utf8PathBuf::from_path_buf(e.unwrap().path()).unwrap())
        .filter(|d| std::fs::read_dir(d).unwrap().next().is_some())
        .collect();
    dirs.sort();
    dirs
}

/// Commits one snapshot of `count` blob files (never inline) made from `seed`.
fn commit_files(store: &Store, count: u64, seed: u64) -> autosave_store::Result<()> {
    let batch = store.batch()?;
    let refs = (0..count)
        .map(|i| Ok(batch.put_file(&random_bytes(5000, seed + i))?.digest))
        .collect::<autosave_store::Result<Vec<_>>>()?;
    let manifest = batch.put_file(format!("{refs:?}").as_bytes())?.digest;
    let mut snapshot = NewSnapshot::new(SnapshotKind::Autosave, manifest);
    snapshot.refs = refs;
    batch.commit(snapshot).map(|_| ())
}

/// The directory fsyncs among `events` under `objects/`, and where the first commit is.
fn object_syncs(events: &[String], store: &Store) -> (Vec<Utf8PathBuf>, Option<usize>) {
    let objects = store.root().join("objects");
    let syncs = events
        .iter()
        .filter_map(|e| e.strip_prefix("sync_dir "))
        .map(Utf8PathBuf::from)
        .filter(|p| p.starts_with(&objects))
        .collect();
    (syncs, events.iter().position(|e| e == "commit"))
}

#[test]
fn a_commit_fsyncs_each_touched_directory_once_all_together_and_all_before_its_rows() {
    let (_dir, store, vfs) = store_with_syncs();
    vfs.take();
    commit_files(&store, 40, 100).unwrap();
    let events = vfs.take();
    let (mut synced, commit) = object_syncs(&events, &store);
    let commit = commit.expect("the commit is recorded");
    let last_sync = events
        .iter()
        .rposition(|e| e.starts_with("sync_dir "))
        .unwrap();
    assert!(
        last_sync < commit,
        "a directory fsync after the commit: {events:?}"
    );
    synced.sort();
    let mut expected = fanout_dirs_with_files(&store);
    expected.push(store.root().join("objects"));
    expected.sort();
    // 41 files in at most 41 fan-out directories, plus `objects/`: each fsynced exactly once.
    assert!(expected.len() > 20, "{expected:?}");
    assert_eq!(synced, expected);
    // One after another, each waited on the one before; together they overlap.
    assert!(
        vfs.most_in_flight.load(Ordering::SeqCst) >= 2,
        "the directory fsyncs ran one at a time"
    );
}

#[test]
fn a_failed_directory_fsync_fails_the_commit_naming_it_and_records_nothing() {
    let (_dir, store, vfs) = store_with_syncs();
    commit_files(&store, 1, 1).unwrap();
    // The fan-out directory of one of the 30 blobs (a file's is the digest's first byte).
    let digest = store.digest_of(&random_bytes(5000, 200 + 7)).to_string();
    let doomed = store.root().join("objects").join(&digest[..2]);
    *vfs.fail.lock().unwrap() = Some(doomed.clone());
    vfs.take();
    let err = commit_files(&store, 30, 200).unwrap_err();
    match &err {
        Error::Io { op, path, .. } => assert_eq!((*op, path), ("fsync", &doomed), "{err}"),
        other => panic!("expected the fsync error, got {other}"),
    }
    let events = vfs.take();
    assert!(!events.contains(&"commit".to_owned()), "{events:?}");
    assert_eq!(store.snapshots().unwrap().len(), 1);
    // Nor does it come back later: no record is left for a session to adopt as an interrupted
    // commit, or for a rebuild to bring back.
    *vfs.fail.lock().unwrap() = None;
    assert_eq!(store.unindexed_records().unwrap(), []);
    // The other directories were fsynced all the same: a failure does not cut the others short.
    let (synced, _) = object_syncs(&events, &store);
    assert!(synced.len() > 10, "{synced:?}");
    assert!(synced.contains(&doomed));
}

#[test]
fn a_gc_fsyncs_the_directories_it_unlinked_from_together_before_it_forgets_their_marks() {
    let (_dir, store, vfs) = store_with_syncs();
    commit_files(&store, 1, 1).unwrap();
    commit_files(&store, 40, 300).unwrap();
    let before = fanout_dirs_with_files(&store);
    let newest = store.latest().unwrap().unwrap().id;
    store.delete_snapshots(&[newest]).unwrap();
    vfs.take();
    let report = store.gc().unwrap();
    // The 40 blobs, the manifest and the snapshot's record.
    assert_eq!(report.blobs_removed, 42);
    let events = vfs.take();
    let (mut synced, first_commit) = object_syncs(&events, &store);
    synced.sort();
    // The commit that deletes the rows comes first; the one that forgets the swept marks after
    // every fsync.
    let first_commit = first_commit.unwrap();
    let last_commit = events.iter().rposition(|e| e == "commit").unwrap();
    assert!(first_commit < last_commit, "{events:?}");
    let syncs: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].starts_with("sync_dir "))
        .collect();
    assert!(
        syncs.iter().all(|&i| first_commit < i && i < last_commit),
        "{events:?}"
    );
    let after = fanout_dirs_with_files(&store);
    let emptied: Vec<Utf8PathBuf> = before.into_iter().filter(|d| !after.contains(d)).collect();
    assert!(emptied.len() > 20, "{emptied:?}");
    assert!(emptied.iter().all(|d| synced.contains(d)), "{synced:?}");
    assert!(vfs.most_in_flight.load(Ordering::SeqCst) >= 2);
}
