use autosave_store::{Digest, Error, GcOptions, GcRefusal, Options, UnindexedRecords};

use crate::{
    blob_file, commit, compressible_bytes, files_under, new_store, new_store_with, random_bytes,
};

#[test]
fn gc_keeps_referenced_blobs_and_removes_unreferenced_ones() {
    let (_dir, store) = new_store();
    let shared = random_bytes(50_000, 40);
    let only_old = random_bytes(60_000, 41);
    let small_old = compressible_bytes(500, 42);
    let only_new = random_bytes(70_000, 43);
    let (old, d_old) = commit(&store, &[&shared, &only_old, &small_old]);
    let (_new, d_new) = commit(&store, &[&shared, &only_new]);
    store.delete_snapshots(&[old]).unwrap();

    let report = store.gc().unwrap();
    // only_old, small_old, the old manifest and the old record
    assert_eq!(report.blobs_removed, 4);
    assert!(report.bytes_freed >= 60_000);
    assert_eq!(report.stray_files_removed, 0);
    assert_eq!(store.get(&d_old[1]).unwrap(), None);
    assert_eq!(store.get(&d_old[2]).unwrap(), None);
    assert!(!blob_file(&store, &d_old[1]).exists());
    assert_eq!(store.get(&d_new[0]).unwrap(), Some(shared));
    assert_eq!(store.get(&d_new[1]).unwrap(), Some(only_new));
    assert!(store.verify(true).unwrap().is_clean());
}

#[test]
fn a_second_gc_finds_nothing_to_do() {
    let (_dir, store) = new_store();
    commit(&store, &[&random_bytes(50_000, 44)]);
    store.gc().unwrap();
    let again = store.gc().unwrap();
    assert_eq!((again.blobs_removed, again.stray_files_removed), (0, 0));
}

#[test]
fn gc_refuses_when_a_referenced_blob_file_is_missing() {
    let (_dir, store) = new_store();
    let (old, _) = commit(&store, &[&random_bytes(50_000, 45)]);
    let (_, d) = commit(&store, &[&random_bytes(50_000, 46)]);
    store.delete_snapshots(&[old]).unwrap();
    std::fs::remove_file(blob_file(&store, &d[0])).unwrap();
    let before = files_under(store.root());
    match store.gc() {
        Err(Error::GcRefused {
            reason: GcRefusal::MissingBlobs { count: 1, first },
        }) => assert_eq!(first, d[0]),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        files_under(store.root()),
        before,
        "a refused gc removes nothing"
    );
}

#[test]
fn gc_refuses_when_it_would_delete_every_blob() {
    let (_dir, store) = new_store();
    let (a, d) = commit(&store, &[&random_bytes(50_000, 47)]);
    store.delete_snapshots(&[a]).unwrap();
    assert!(matches!(
        store.gc(),
        Err(Error::GcRefused {
            reason: GcRefusal::WouldDeleteEverything { blobs: 3 }
        })
    ));
    assert!(blob_file(&store, &d[0]).exists());
}

#[test]
fn gc_with_allow_empty_deletes_every_blob_once_no_snapshot_is_left() {
    let (_dir, store) = new_store();
    let (a, d) = commit(&store, &[&random_bytes(50_000, 47), b"inline"]);
    store.delete_snapshots(&[a]).unwrap();
    let report = store
        .gc_with(GcOptions {
            allow_empty: true,
            ..GcOptions::default()
        })
        .unwrap();
    assert_eq!(report.blobs_removed, 4, "two blobs, a manifest, a record");
    assert_eq!(report.blobs_kept, 0);
    assert!(!blob_file(&store, &d[0]).exists());
    assert!(store.verify(true).unwrap().is_clean());
    assert!(store.snapshots().unwrap().is_empty());
    // The store goes on as new.
    let (_, again) = commit(&store, &[&random_bytes(50_000, 47)]);
    assert_eq!(again[0], d[0]);
    assert!(blob_file(&store, &d[0]).exists());
    assert!(store.verify(true).unwrap().is_clean());
}

#[test]
fn gc_removes_files_left_by_interrupted_writes() {
    let (_dir, store) = new_store();
    commit(&store, &[&random_bytes(50_000, 48)]);
    let batch = store.batch().unwrap();
    let orphan = batch.put(&random_bytes(50_000, 49)).unwrap().digest;
    drop(batch);
    let fanout = store.root().join("objects").join("ab");
    std::fs::create_dir_all(&fanout).unwrap();
    std::fs::write(fanout.join(".tmp-1-2-3"), b"half a blob").unwrap();
    std::fs::write(store.root().join("tmp").join("scratch"), b"x").unwrap();

    let report = store.gc().unwrap();
    assert_eq!(report.stray_files_removed, 3);
    assert!(!blob_file(&store, &orphan).exists());
    assert!(!fanout.join(".tmp-1-2-3").exists());
    assert!(files_under(&store.root().join("tmp")).is_empty());
}

#[test]
fn gc_removes_a_temp_file_left_in_the_store_directory_by_an_interrupted_creation() {
    let (_dir, store) = new_store();
    commit(&store, &[&random_bytes(50_000, 60)]);
    let temp = store.root().join(".tmp-1-2-3");
    std::fs::write(&temp, b"half a FORMAT").unwrap();

    let report = store.gc().unwrap();
    assert_eq!(report.stray_files_removed, 1);
    assert!(!temp.exists());
    // Only temp files go: the store's own files stay.
    assert!(store.root().join("FORMAT").exists());
    assert!(store.root().join("LOCK").exists());
    assert!(crate::Store::open(store.root()).is_ok());
}

#[test]
fn a_dry_run_reports_without_removing() {
    let (_dir, store) = new_store();
    let (old, d) = commit(&store, &[&random_bytes(50_000, 50)]);
    commit(&store, &[b"keep"]);
    store.delete_snapshots(&[old]).unwrap();
    let before = files_under(store.root().join("objects").as_path());
    let report = store
        .gc_with(GcOptions {
            dry_run: true,
            ..GcOptions::default()
        })
        .unwrap();
    assert_eq!(report.blobs_removed, 3);
    assert_eq!(files_under(store.root().join("objects").as_path()), before);
    assert!(store.contains(&d[0]).unwrap());
}

#[test]
fn gc_is_busy_while_a_batch_is_open_and_the_batch_still_commits() {
    let (_dir, store) = new_store();
    commit(&store, &[b"first"]);
    let batch = store.batch().unwrap();
    let d = batch.put(&random_bytes(40_000, 51)).unwrap().digest;
    assert!(matches!(store.gc(), Err(Error::Busy { .. })));
    let manifest = batch.put_file(b"m").unwrap().digest;
    let mut snap =
        autosave_store::NewSnapshot::new(autosave_store::SnapshotKind::Autosave, manifest);
    snap.refs.push(d);
    batch.commit(snap).unwrap();
    store.gc().unwrap();
    assert!(store.get(&d).unwrap().is_some());
}

#[test]
fn gc_is_busy_while_a_reader_holds_the_store() {
    let (_dir, store) = new_store();
    commit(&store, &[b"first"]);
    let reader = store.reader().unwrap();
    assert!(matches!(store.gc(), Err(Error::Busy { .. })));
    drop(reader);
    store.gc().unwrap();
}

#[test]
fn after_gc_a_put_of_removed_bytes_writes_them_again() {
    let (_dir, store) = new_store();
    let bytes = random_bytes(50_000, 52);
    let (old, d) = commit(&store, &[&bytes]);
    commit(&store, &[b"keep"]);
    store.delete_snapshots(&[old]).unwrap();
    store.gc().unwrap();
    // the in-memory cache of known digests must not survive the gc
    let (_, again) = commit(&store, &[&bytes]);
    assert_eq!(again[0], d[0]);
    assert_eq!(store.get(&d[0]).unwrap(), Some(bytes));
    assert!(store.verify(true).unwrap().is_clean());
}

/// The real filesystem, except that removing files fails while `stopped` is set (a GC then
/// stops right after it committed its row deletions, where a crash could stop it), and index
/// commits fail while `killed` is set (a batch then stops with its files written and no rows).
#[derive(Debug, Default)]
struct StopsBeforeUnlink {
    stopped: std::sync::atomic::AtomicBool,
    killed: std::sync::atomic::AtomicBool,
}

impl crate::Hooks for StopsBeforeUnlink {
    fn remove_file(&self, _path: &camino::Utf8Path) -> Option<std::io::Result<()>> {
        self.stopped
            .load(std::sync::atomic::Ordering::SeqCst)
            .then(|| Err(std::io::Error::other("stopped before unlinking")))
    }
    fn before_commit(&self, _needs: &[camino::Utf8PathBuf]) -> std::io::Result<()> {
        if self.killed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::other("killed before the index commit"));
        }
        Ok(())
    }
}

/// A store whose GC stopped after deleting the rows of snapshot `old` (holding `bytes`), before
/// unlinking its files.
fn store_with_a_stopped_gc() -> (
    tempfile::TempDir,
    autosave_store::Store,
    std::sync::Arc<crate::Hooked<StopsBeforeUnlink>>,
    Vec<u8>,
    Digest,
) {
    let vfs = std::sync::Arc::new(crate::Hooked(StopsBeforeUnlink::default()));
    let (dir, store) = new_store_with(Options {
        vfs: vfs.clone(),
        ..Options::default()
    });
    let bytes = random_bytes(60_000, 50);
    let (old, _) = commit(&store, &[&bytes]);
    commit(&store, &[&random_bytes(70_000, 51)]);
    let old_record = store.snapshot(old).unwrap().unwrap().record;
    store.delete_snapshots(&[old]).unwrap();
    vfs.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(store.gc().is_err(), "the sweep cannot unlink");
    vfs.stopped
        .store(false, std::sync::atomic::Ordering::SeqCst);
    (dir, store, vfs, bytes, old_record)
}

#[test]
fn files_of_a_gc_stopped_before_unlinking_are_never_taken_for_lost_snapshots() {
    let (_dir, store, _vfs, bytes, old_record) = store_with_a_stopped_gc();
    let old_blob = store.digest_of(&bytes);
    // The collected snapshot's record is still a file, with no row: GC's own leftover.
    assert!(blob_file(&store, &old_record).exists());
    assert_eq!(store.unindexed_records().unwrap(), Vec::<Digest>::new());
    assert!(store.verify(true).unwrap().unindexed_records.is_empty());
    // A GC that refuses while a snapshot may have been lost finishes the sweep instead.
    let options = GcOptions {
        unindexed: UnindexedRecords::Refuse,
        ..GcOptions::default()
    };
    let report = store.gc_with(options).unwrap();
    assert!(report.stray_files_removed >= 3, "{report:?}");
    assert!(!blob_file(&store, &old_record).exists());
    assert!(!blob_file(&store, &old_blob).exists());
    assert!(store.verify(true).unwrap().is_clean());
}

#[test]
fn a_rebuild_after_a_gc_stopped_before_unlinking_does_not_bring_back_what_it_collected() {
    let (_dir, store, _vfs, _, old_record) = store_with_a_stopped_gc();
    let root = store.root().to_owned();
    drop(store);
    let refs_of = |_: &[u8]| Some(Vec::new());
    let (rebuilt, _) =
        autosave_store::Store::rebuild_index(&root, Options::default(), &refs_of).unwrap();
    let records: Vec<Digest> = rebuilt
        .snapshots()
        .unwrap()
        .iter()
        .map(|s| s.record)
        .collect();
    assert_eq!(records.len(), 1, "only the snapshot that was kept");
    assert!(!records.contains(&old_record));
}

#[test]
fn bytes_a_stopped_gc_marked_still_serve_a_later_commit_that_reused_them() {
    let (_dir, store, vfs, bytes, _) = store_with_a_stopped_gc();
    // An autosave of the same bytes reuses the marked file, and is stopped before its index
    // commit: a complete snapshot with no rows, which adoption must bring back.
    vfs.killed.store(true, std::sync::atomic::Ordering::SeqCst);
    let batch = store.batch().unwrap();
    let digest = batch.put(&bytes).unwrap().digest;
    let manifest = batch
        .put_file(b"a manifest of the reused bytes")
        .unwrap()
        .digest;
    let mut snapshot =
        autosave_store::NewSnapshot::new(autosave_store::SnapshotKind::Autosave, manifest);
    snapshot.refs = vec![digest];
    assert!(batch.commit(snapshot).is_err());
    vfs.killed.store(false, std::sync::atomic::Ordering::SeqCst);
    let refs_of = move |_: &[u8]| Some(vec![digest]);
    assert_eq!(store.complete_unindexed_records(&refs_of).unwrap().len(), 1);
    let adopted = store.adopt_unindexed(&refs_of).unwrap();
    assert_eq!(adopted.len(), 1);
    assert_eq!(store.get(&digest).unwrap(), Some(bytes));
    assert!(store.verify(true).unwrap().is_clean());
}
