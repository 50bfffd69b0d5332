use autosave::store::SnapshotKind;
use autosave::{Options, Session};

use crate::{HostTree, project};

#[test]
fn retention_keeps_the_last_n_autosaves_and_the_newest_baseline() {
    let (_tmp, dir) = project();
    let options = Options {
        keep_autosaves: 3,
        ..Options::default()
    };
    let mut s = Session::open(&dir, options).unwrap();
    let mut tree = HostTree::sample(20);
    s.save_explicit(&tree.nodes()).unwrap();
    let mut autosaves = Vec::new();
    for i in 0..6u8 {
        tree.set(&["notes"], "note", vec![i; 40_000]);
        autosaves.push(s.autosave(&tree.nodes()).unwrap().snapshot.unwrap());
    }
    let kinds: Vec<(u64, SnapshotKind)> = s
        .store()
        .snapshots()
        .unwrap()
        .iter()
        .map(|x| (x.id.0, x.kind))
        .collect();
    assert_eq!(kinds.len(), 4);
    assert_eq!(kinds[0].1, SnapshotKind::Explicit);
    let kept: Vec<u64> = kinds[1..].iter().map(|k| k.0).collect();
    assert_eq!(kept, autosaves[3..].iter().map(|a| a.0).collect::<Vec<_>>());
    // The notes of the dropped autosaves were collected.
    assert_eq!(s.store().stats().unwrap().snapshots, 4);
    assert!(s.store().verify(true).unwrap().is_clean());
}

#[test]
fn an_explicit_save_clears_the_autosaves_it_supersedes() {
    let (_tmp, dir) = project();
    let mut s = Session::open(&dir, Options::default()).unwrap();
    let mut tree = HostTree::sample(21);
    s.save_explicit(&tree.nodes()).unwrap();
    tree.set(&["notes"], "note", vec![7; 40_000]);
    let a = s.autosave(&tree.nodes()).unwrap().snapshot.unwrap();
    tree.set(&["notes"], "note", vec![8; 40_000]);
    let report = s.save_explicit(&tree.nodes()).unwrap();
    assert!(report.removed.contains(&a));
    assert!(report.gc.is_some());
    let left: Vec<SnapshotKind> = s
        .store()
        .snapshots()
        .unwrap()
        .iter()
        .map(|x| x.kind)
        .collect();
    assert_eq!(left, [SnapshotKind::Explicit]);
}

#[test]
fn a_read_only_session_reads_but_does_not_write() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(22);
    let mut live = Session::open(&dir, Options::default()).unwrap();
    live.save_explicit(&tree.nodes()).unwrap();
    let mut reader = Session::open(
        &dir,
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(reader.is_read_only());
    assert!(matches!(
        reader.autosave(&tree.nodes()),
        Err(autosave::Error::ReadOnly)
    ));
    let id = reader.store().latest().unwrap().unwrap().id;
    assert_eq!(
        crate::restored_contents(&reader.restore(id).unwrap()),
        tree.contents()
    );
}

#[test]
fn a_token_unchanged_autosave_reads_nothing_and_reports_it() {
    let (_tmp, dir) = project();
    let mut s = Session::open(&dir, Options::default()).unwrap();
    let mut tree = HostTree::sample(23);
    s.autosave(&tree.nodes()).unwrap();
    tree.set(&["notes"], "note", b"one small edit".to_vec());
    let report = s.autosave(&tree.nodes()).unwrap();
    assert_eq!(report.tree.entries, 7);
    assert_eq!(report.tree.skipped_token, 6);
    assert_eq!(report.tree.hashed, 1);
    assert_eq!(report.tree.bytes_hashed, 14);
    assert!(report.snapshot.is_some());
}

/// The index files of a closed store.
fn save_index(store_dir: &camino::Utf8Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let name = format!("index.sqlite{suffix}");
            std::fs::read(store_dir.join(&name)).ok().map(|b| (name, b))
        })
        .collect()
}

/// Puts back index files saved by [`save_index`], as a damaged write-ahead log that drops every
/// later commit leaves the index.
fn put_back_index(store_dir: &camino::Utf8Path, saved: Vec<(String, Vec<u8>)>) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(store_dir.join(format!("index.sqlite{suffix}")));
    }
    for (name, bytes) in saved {
        std::fs::write(store_dir.join(name), bytes).unwrap();
    }
}

#[test]
fn a_session_brings_back_the_autosaves_its_index_lost_and_recovery_offers_the_newest() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(23);
    let store_dir = {
        let mut s = Session::open(&dir, Options::default()).unwrap();
        s.save_explicit(&tree.nodes()).unwrap();
        tree.set(&["notes"], "note", vec![1; 40_000]);
        s.autosave(&tree.nodes()).unwrap();
        s.store().root().to_owned()
    };
    let before = save_index(&store_dir);
    {
        let mut s = Session::open(&dir, Options::default()).unwrap();
        assert_eq!(s.adopted(), []);
        tree.set(&["notes"], "note", vec![2; 40_000]);
        s.autosave(&tree.nodes()).unwrap();
        tree.set(&["notes"], "note", vec![3; 40_000]);
        s.autosave(&tree.nodes()).unwrap();
    }
    // The index loses both autosaves, as it does when its write-ahead log is damaged.
    put_back_index(&store_dir, before);

    let s = Session::open(&dir, Options::default()).unwrap();
    assert_eq!(s.adopted().len(), 2);
    assert_eq!(s.store().unindexed_records().unwrap(), []);
    let recovery = s
        .recovery()
        .unwrap()
        .expect("the newest autosave is offered");
    assert_eq!(recovery.snapshot.id, s.adopted()[1]);
    assert!(recovery.problem.is_none(), "{:?}", recovery.problem);
    let restored = crate::restored_contents(&s.restore(recovery.snapshot.id).unwrap());
    assert_eq!(restored, tree.contents(), "the last autosave, exactly");
    assert!(s.store().verify(true).unwrap().is_clean());
}

#[test]
fn retention_never_sweeps_an_autosave_the_index_lost_that_the_session_could_not_bring_back() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(24);
    let options = Options {
        keep_autosaves: 1,
        ..Options::default()
    };
    let store_dir = {
        let mut s = Session::open(&dir, options.clone()).unwrap();
        s.save_explicit(&tree.nodes()).unwrap();
        s.store().root().to_owned()
    };
    let before = save_index(&store_dir);
    let lost_tree = {
        let mut s = Session::open(&dir, options.clone()).unwrap();
        tree.set(&["notes"], "note", vec![5; 40_000]);
        s.autosave(&tree.nodes()).unwrap();
        tree.clone()
    };
    let lost_record = autosave::store::Store::open(&store_dir)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap()
        .record;
    // The index loses that autosave; then a process that does not adopt (a plain store, as
    // `autosave snapshot` opens it) commits first, so the lost record is no longer the newest.
    put_back_index(&store_dir, before);
    {
        let store = autosave::store::Store::open(&store_dir).unwrap();
        let other = HostTree::sample(25);
        let spec = autosave::tree::SnapshotSpec::new(SnapshotKind::Autosave);
        let mut cache = autosave::tree::ChangeCache::new();
        autosave::tree::write_snapshot(&store, &mut cache, &other.nodes(), &spec).unwrap();
    }

    let mut s = Session::open(&dir, options).unwrap();
    assert_eq!(
        s.adopted(),
        [],
        "older than the newest snapshot: not adopted"
    );
    tree.set(&["notes"], "note", vec![6; 40_000]);
    let report = s.autosave(&tree.nodes()).unwrap();
    assert!(!report.removed.is_empty(), "retention dropped an autosave");
    let skipped = report.gc_skipped.expect("the sweep waits");
    assert!(
        matches!(skipped, autosave::Skipped::UnindexedRecords { count: 1, first } if first == lost_record),
        "{skipped:?}"
    );
    assert!(skipped.to_string().contains("repair index"), "{skipped}");
    assert_eq!(s.store().unindexed_records().unwrap(), [lost_record]);
    drop(s);

    // `autosave repair index` brings it back, whole.
    let refs_of = |bytes: &[u8]| {
        autosave::tree::Manifest::decode(bytes)
            .ok()
            .map(|m| m.blobs())
    };
    let (store, _) = autosave::store::Store::rebuild_index(
        &store_dir,
        autosave::store::Options::default(),
        &refs_of,
    )
    .unwrap();
    let back = store
        .snapshots()
        .unwrap()
        .into_iter()
        .find(|x| x.record == lost_record)
        .expect("the lost autosave is listed again");
    let manifest = autosave::tree::snapshot_manifest(&store, back.id).unwrap();
    let mut contents: Vec<(Vec<String>, String, Vec<u8>)> = manifest
        .entries()
        .iter()
        .map(|e| {
            let bytes = autosave::tree::read_content(&store, &e.content).unwrap();
            (e.path.keys().to_vec(), e.kind.clone(), bytes)
        })
        .collect();
    contents.sort();
    assert_eq!(contents, lost_tree.contents());
}

#[test]
fn a_session_that_could_not_adopt_when_it_opened_adopts_before_its_first_save() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(26);
    let store_dir = {
        let mut s = Session::open(&dir, Options::default()).unwrap();
        s.save_explicit(&tree.nodes()).unwrap();
        s.store().root().to_owned()
    };
    let before = save_index(&store_dir);
    {
        let mut s = Session::open(&dir, Options::default()).unwrap();
        tree.set(&["notes"], "note", vec![7; 40_000]);
        s.autosave(&tree.nodes()).unwrap();
    }
    let lost_tree = tree.clone();
    put_back_index(&store_dir, before);
    // Another process reads the store while the session opens: adoption has to wait.
    let other = autosave::store::Store::open(&store_dir).unwrap();
    let reading = other.reader().unwrap();
    let mut s = Session::open(&dir, Options::default()).unwrap();
    assert_eq!(s.adopted(), []);
    drop(reading);

    tree.set(&["notes"], "note", vec![8; 40_000]);
    s.autosave(&tree.nodes()).unwrap();
    assert_eq!(
        s.adopted().len(),
        1,
        "adopted before the autosave committed"
    );
    assert_eq!(s.store().unindexed_records().unwrap(), []);
    let restored = crate::restored_contents(&s.restore(s.adopted()[0]).unwrap());
    assert_eq!(restored, lost_tree.contents());
    let newest = s.store().latest().unwrap().unwrap();
    assert!(
        newest.id > s.adopted()[0],
        "the new autosave follows the adopted one"
    );
}
