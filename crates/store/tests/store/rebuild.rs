use std::collections::HashMap;

use autosave_store::{
    Digest, Error, GcOptions, GcRefusal, NewSnapshot, Options, Problem, SnapshotKind, Store,
    UnindexedRecords,
};

use crate::{new_store, random_bytes};

/// Commits a snapshot whose manifest bytes are `name`, remembering its refs for the rebuild.
fn commit_named(
    store: &Store,
    name: &str,
    contents: &[&[u8]],
    refs: &mut HashMap<Vec<u8>, Vec<Digest>>,
) -> Vec<Digest> {
    let batch = store.batch().unwrap();
    let digests: Vec<Digest> = contents
        .iter()
        .map(|c| batch.put(c).unwrap().digest)
        .collect();
    let manifest = batch.put_file(name.as_bytes()).unwrap().digest;
    let mut snap = NewSnapshot::new(SnapshotKind::Autosave, manifest);
    snap.refs = digests.clone();
    snap.label = name.to_owned();
    batch.commit(snap).unwrap();
    refs.insert(name.as_bytes().to_vec(), digests.clone());
    digests
}

type Refs = HashMap<Vec<u8>, Vec<Digest>>;

fn setup() -> (tempfile::TempDir, Store, Refs, Vec<Vec<u8>>) {
    let (dir, store) = new_store();
    let mut refs = HashMap::new();
    let contents = vec![
        random_bytes(100_000, 1),
        random_bytes(200_000, 2),
        random_bytes(3000, 3),
    ];
    commit_named(&store, "first", &[&contents[0]], &mut refs);
    commit_named(
        &store,
        "second",
        &[&contents[0], &contents[1], &contents[2]],
        &mut refs,
    );
    (dir, store, refs, contents)
}

fn remove_index(root: &camino::Utf8Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(root.join(format!("index.sqlite{suffix}")));
    }
}

#[test]
fn a_deleted_index_is_rebuilt_from_the_files_and_names_what_only_it_held() {
    let (_dir, store, refs, contents) = setup();
    let root = store.root().to_owned();
    drop(store);
    remove_index(&root);
    assert!(matches!(
        Store::open(&root),
        Err(Error::DamagedIndex { .. })
    ));

    let refs_of = |bytes: &[u8]| refs.get(bytes).cloned();
    let (store, report) = Store::rebuild_index(&root, Options::default(), &refs_of).unwrap();
    assert_eq!(report.snapshots, 2);
    assert_eq!(report.lost_snapshots, 0);
    assert_eq!(
        report.inline_blobs, 0,
        "the index was gone, and with it the inline blob"
    );
    assert_eq!(labels(&store), ["first", "second"]);
    for c in &contents[..2] {
        assert_eq!(store.get(&store.digest_of(c)).unwrap().as_ref(), Some(c));
    }
    // The 3,000-byte blob lived only in the index: verify names the snapshot that needed it.
    let verify = store.verify(true).unwrap();
    assert_eq!(verify.damaged.len(), 1);
    assert_eq!(verify.damaged[0].problem, Problem::NotInIndex);
    assert_eq!(verify.damaged_snapshots, [store.snapshots().unwrap()[1].id]);
}

#[test]
fn rebuilding_a_healthy_index_carries_its_inline_blobs_over() {
    let (_dir, store, refs, contents) = setup();
    let root = store.root().to_owned();
    drop(store);
    let refs_of = |bytes: &[u8]| refs.get(bytes).cloned();
    let (store, report) = Store::rebuild_index(&root, Options::default(), &refs_of).unwrap();
    assert_eq!((report.snapshots, report.inline_blobs), (2, 1));
    assert!(store.verify(true).unwrap().is_clean());
    for c in &contents {
        assert_eq!(store.get(&store.digest_of(c)).unwrap().as_ref(), Some(c));
    }
}

#[test]
fn a_garbage_index_is_replaced_and_damaged_blob_files_are_left_out() {
    let (_dir, store, refs, contents) = setup();
    let root = store.root().to_owned();
    let damaged = store.digest_of(&contents[1]);
    drop(store);
    std::fs::write(root.join("index.sqlite"), b"this is not a database").unwrap();
    let _ = std::fs::remove_file(root.join("index.sqlite-wal"));
    let hex = damaged.to_string();
    crate::flip_byte(&root.join("objects").join(&hex[..2]).join(&hex), 500);

    let refs_of = |bytes: &[u8]| refs.get(bytes).cloned();
    let (store, report) = Store::rebuild_index(&root, Options::default(), &refs_of).unwrap();
    assert_eq!(report.damaged_files, 1);
    assert_eq!(report.snapshots, 2);
    assert_eq!(
        store.get(&store.digest_of(&contents[0])).unwrap().as_ref(),
        Some(&contents[0])
    );
    assert_eq!(
        store.get(&damaged).unwrap(),
        None,
        "a damaged file is not indexed"
    );
    assert!(!store.verify(false).unwrap().is_clean());
}

#[test]
fn a_snapshot_whose_manifest_cannot_be_decoded_is_reported_lost() {
    let (_dir, store, _refs, _) = setup();
    let root = store.root().to_owned();
    drop(store);
    let (store, report) =
        Store::rebuild_index(&root, Options::default(), &|_: &[u8]| None).unwrap();
    assert_eq!((report.snapshots, report.lost_snapshots), (0, 2));
    assert!(store.snapshots().unwrap().is_empty());
}

#[test]
fn rebuild_is_refused_while_the_store_is_in_use() {
    let (_dir, store, refs, _) = setup();
    let reader = store.reader().unwrap();
    let refs_of = |bytes: &[u8]| refs.get(bytes).cloned();
    assert!(matches!(
        Store::rebuild_index(store.root(), Options::default(), &refs_of),
        Err(Error::Busy { .. })
    ));
    drop(reader);
}

#[test]
fn rebuild_is_refused_while_any_handle_is_open_even_an_idle_one() {
    let (_dir, store, mut refs, contents) = setup();
    let root = store.root().to_owned();
    let idle = Store::open(&root).unwrap();
    drop(store);
    let refs_of = |refs: &Refs| {
        let refs = refs.clone();
        move |bytes: &[u8]| refs.get(bytes).cloned()
    };
    // The idle handle holds no operation's lock, only its index: replacing that index would
    // leave the handle committing into a file no one else sees.
    assert!(matches!(
        Store::rebuild_index(&root, Options::default(), &refs_of(&refs)),
        Err(Error::Busy { .. })
    ));
    let index = std::fs::metadata(root.join("index.sqlite")).unwrap();
    commit_named(&idle, "third", &[&contents[0]], &mut refs);
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(root.join("index.sqlite")).unwrap()),
        std::os::unix::fs::MetadataExt::ino(&index),
        "the refused rebuild left the index in place"
    );
    drop(idle);

    let (rebuilt, report) =
        Store::rebuild_index(&root, Options::default(), &refs_of(&refs)).unwrap();
    assert_eq!(
        report.snapshots, 3,
        "the idle handle's commit is in the index"
    );
    // A handle opened later (here, the one the rebuild returns) keeps the next rebuild away.
    assert!(matches!(
        Store::rebuild_index(&root, Options::default(), &refs_of(&refs)),
        Err(Error::Busy { .. })
    ));
    drop(rebuilt);
}

/// Stops the first directory fsync (a rebuild's, right after it created the new index) until
/// the test lets it go.
#[derive(Debug)]
struct PausesRebuild {
    paused: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    go: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl crate::Hooks for PausesRebuild {
    fn sync_dir(&self, _path: &camino::Utf8Path) -> Option<std::io::Result<()>> {
        if let Some(paused) = self.paused.lock().unwrap().take() {
            paused.send(()).unwrap();
            self.go.lock().unwrap().recv().unwrap();
        }
        None
    }
}

#[test]
fn a_store_opened_during_a_rebuild_waits_for_it_and_opens_the_new_index() {
    let (_dir, store, refs, _) = setup();
    let root = store.root().to_owned();
    drop(store);
    let (paused_tx, paused) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel();
    let vfs = std::sync::Arc::new(crate::Hooked(PausesRebuild {
        paused: std::sync::Mutex::new(Some(paused_tx)),
        go: std::sync::Mutex::new(go_rx),
    }));
    std::thread::scope(|s| {
        let rebuild = s.spawn(|| {
            let options = Options {
                vfs: vfs.clone(),
                ..Options::default()
            };
            let refs_of = |bytes: &[u8]| refs.get(bytes).cloned();
            Store::rebuild_index(&root, options, &refs_of).map(|(_, report)| report)
        });
        // The rebuild has removed the old index and created the new, empty one.
        paused.recv().unwrap();
        let (opened_tx, opened) = std::sync::mpsc::channel();
        let root = &root;
        s.spawn(move || {
            let store = Store::open(root).unwrap();
            opened_tx.send(store.snapshots().unwrap().len()).unwrap();
        });
        let early = opened.recv_timeout(std::time::Duration::from_millis(300));
        // Let the rebuild go on before any assertion, so that a failing one cannot leave it
        // waiting forever.
        go.send(()).unwrap();
        assert_eq!(
            early,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout),
            "a store opened while the rebuild was under way"
        );
        assert_eq!(rebuild.join().unwrap().unwrap().snapshots, 2);
        assert_eq!(
            opened.recv().unwrap(),
            2,
            "the waiting open sees the rebuilt index"
        );
    });
}

/// The index files of a closed store, to put back later.
fn save_index(root: &camino::Utf8Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let name = format!("index.sqlite{suffix}");
            std::fs::read(root.join(&name)).ok().map(|b| (name, b))
        })
        .collect()
}

/// A store whose index lost its second commit, as it does when its write-ahead log is damaged:
/// the temp dir, the store's root, the refs for a rebuild, the lost snapshot's record, and the
/// bytes only it held.
fn store_that_lost_a_commit() -> (
    tempfile::TempDir,
    camino::Utf8PathBuf,
    Refs,
    Digest,
    Vec<u8>,
) {
    let (dir, store) = new_store();
    let mut refs = HashMap::new();
    let (a, b) = (random_bytes(100_000, 1), random_bytes(200_000, 2));
    commit_named(&store, "first", &[&a], &mut refs);
    let root = store.root().to_owned();
    drop(store);
    let before = save_index(&root);
    let store = Store::open(&root).unwrap();
    commit_named(&store, "second", &[&a, &b], &mut refs);
    let lost = store.snapshots().unwrap()[1].record;
    assert_eq!(store.verify(false).unwrap().unindexed_records, []);
    drop(store);
    remove_index(&root);
    for (name, bytes) in before {
        std::fs::write(root.join(name), bytes).unwrap();
    }
    (dir, root, refs, lost, b)
}

#[test]
fn verify_names_the_records_of_commits_the_index_lost_and_a_rebuild_brings_them_back() {
    let (_dir, root, refs, lost, b) = store_that_lost_a_commit();
    let store = Store::open(&root).unwrap();
    assert_eq!(store.snapshots().unwrap().len(), 1);
    let report = store.verify(true).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.unindexed_records, [lost]);
    assert_eq!(store.unindexed_records().unwrap(), [lost]);
    drop(store);

    let refs_of = |bytes: &[u8]| refs.get(bytes).cloned();
    let (store, rebuilt) = Store::rebuild_index(&root, Options::default(), &refs_of).unwrap();
    assert_eq!(rebuilt.snapshots, 2);
    let report = store.verify(true).unwrap();
    assert!(report.is_clean() && report.unindexed_records.is_empty());
    assert_eq!(store.get(&store.digest_of(&b)).unwrap().as_ref(), Some(&b));
}

#[test]
fn gc_refuses_to_sweep_records_the_index_lost_when_asked_to_and_sweeps_them_by_default() {
    let (_dir, root, _refs, lost, b) = store_that_lost_a_commit();
    let store = Store::open(&root).unwrap();
    let refuse = GcOptions {
        unindexed: UnindexedRecords::Refuse,
        ..GcOptions::default()
    };
    let before = crate::files_under(root.join("objects").as_path());
    match store.gc_with(refuse) {
        Err(Error::GcRefused {
            reason: GcRefusal::UnindexedSnapshots { count: 1, first },
        }) => assert_eq!(first, lost),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(crate::files_under(root.join("objects").as_path()), before);

    // The default sweeps them with every other file that has no row: the second commit's
    // record and the blob only it held are gone.
    let report = store.gc().unwrap();
    assert!(report.stray_files_removed >= 2, "{report:?}");
    assert_eq!(store.unindexed_records().unwrap(), []);
    let hex = store.digest_of(&b).to_string();
    assert!(!root.join("objects").join(&hex[..2]).join(&hex).exists());
}

#[test]
fn adopting_brings_back_a_commit_the_index_lost_and_keeps_the_other_ids() {
    let (_dir, root, refs, lost, b) = store_that_lost_a_commit();
    let store = Store::open(&root).unwrap();
    let first = store.snapshots().unwrap()[0].clone();
    let refs_of = |bytes: &[u8]| refs.get(bytes).cloned();
    let adopted = store.adopt_unindexed(&refs_of).unwrap();
    assert_eq!(adopted.len(), 1);
    let listed = store.snapshots().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], first, "the existing snapshot is untouched");
    assert_eq!(listed[1].id, adopted[0]);
    assert_eq!(listed[1].record, lost);
    assert_eq!(listed[1].label, "second");
    assert_eq!(store.get(&store.digest_of(&b)).unwrap().as_ref(), Some(&b));
    let report = store.verify(true).unwrap();
    assert!(report.is_clean() && report.unindexed_records.is_empty());
    // Nothing is left to adopt, and a reopened store still lists it.
    assert_eq!(store.adopt_unindexed(&refs_of).unwrap(), []);
    drop(store);
    assert_eq!(Store::open(&root).unwrap().snapshots().unwrap().len(), 2);
}

#[test]
fn adopting_leaves_a_record_older_than_the_newest_snapshot_or_missing_a_blob() {
    let (_dir, root, mut refs, lost, b) = store_that_lost_a_commit();
    let refs_of = |refs: &Refs| {
        let refs = refs.clone();
        move |bytes: &[u8]| refs.get(bytes).cloned()
    };
    // A blob only the lost commit held is gone: its tree is not complete.
    let hex = Digest::to_string(&Store::open(&root).unwrap().digest_of(&b));
    let path = root.join("objects").join(&hex[..2]).join(&hex);
    let saved = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let store = Store::open(&root).unwrap();
    assert_eq!(store.adopt_unindexed(&refs_of(&refs)).unwrap(), []);
    std::fs::write(&path, saved).unwrap();
    // A later commit makes it older than the newest snapshot: left for a rebuild.
    commit_named(&store, "third", &[b"later"], &mut refs);
    assert_eq!(store.adopt_unindexed(&refs_of(&refs)).unwrap(), []);
    assert_eq!(store.unindexed_records().unwrap(), [lost]);
}

#[test]
fn a_rebuild_never_brings_back_a_deleted_snapshot() {
    let (_dir, store, refs, _) = setup();
    let root = store.root().to_owned();
    let first = store.snapshots().unwrap()[0].id;
    store.delete_snapshots(&[first]).unwrap();
    drop(store);
    let refs_of = |bytes: &[u8]| refs.get(bytes).cloned();
    for round in 0..2 {
        // Its record file stays until a GC, but the index marks it as given up, and a
        // rebuild (which salvages what it can of the old index) carries the mark over, so a
        // second rebuild agrees with the first.
        let (store, report) = Store::rebuild_index(&root, Options::default(), &refs_of).unwrap();
        assert_eq!(report.snapshots, 1, "round {round}");
        assert_eq!(labels(&store), ["second"], "round {round}");
    }
    // GC then removes the record, and the mark with it.
    let store = Store::open(&root).unwrap();
    let report = store.gc().unwrap();
    assert!(report.blobs_removed >= 2, "{report:?}");
    assert!(store.verify(true).unwrap().is_clean());
}

/// The snapshots' labels, oldest first.
fn labels(store: &Store) -> Vec<String> {
    store
        .snapshots()
        .unwrap()
        .iter()
        .map(|s| s.label.clone())
        .collect()
}
