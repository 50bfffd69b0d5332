//! The status record a directory snapshot leaves in the store: a no-change snapshot by a new
//! process that trusts the walk and the record alone, never where the full check would not.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

use autosave_store::{Digest, SnapshotKind, Store};
use autosave_tree::{
    ChangeCache, DirWritten, Report, SnapshotSpec, dir_nodes, snapshot_dir, write_snapshot,
};
use proptest::prelude::*;

use crate::dir::make_tree;
use crate::{new_store, random_bytes};

/// The name under which the store keeps one of a directory's caches.
fn cache_name(kind: &str, root: &Path) -> String {
    format!("{kind}:{}", std::fs::canonicalize(root).unwrap().display())
}

/// A snapshot of `root` by a new process, recording nothing if the tree is the newest snapshot's.
fn again(store: &Store, root: &Path) -> DirWritten {
    let store = Store::open(store.root()).unwrap();
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    spec.unless_manifest = store.latest().unwrap().map(|s| s.manifest);
    snapshot_dir(&store, root, &spec).unwrap()
}

/// The manifest of the tree as it is now, by a store that has never seen it.
fn from_scratch(root: &Path) -> Digest {
    let (_dir, store) = new_store();
    let (nodes, errors) = dir_nodes(root, store.root().as_std_path()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let spec = SnapshotSpec::new(SnapshotKind::Autosave);
    write_snapshot(&store, &mut ChangeCache::new(), &nodes, &spec)
        .unwrap()
        .manifest
}

fn without_duration(report: &Report) -> Report {
    let mut report = report.clone();
    report.duration = Duration::ZERO;
    report
}

fn set_mtime(path: &Path, time: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

#[test]
fn the_record_alone_vouches_for_an_unchanged_tree_as_the_full_check_does() {
    let (dir, store) = new_store();
    let src = dir.path().join("project");
    make_tree(&src);
    let first = snapshot_dir(&store, &src, &SnapshotSpec::new(SnapshotKind::Autosave)).unwrap();
    let by_record = again(&store, &src);
    // Without a record, the change cache checks every entry (and writes the record again).
    store
        .save_cache(&cache_name("dir-record", &src), b"")
        .unwrap();
    let by_cache = again(&store, &src);
    for w in [&by_record, &by_cache] {
        assert_eq!(w.snapshot, None);
        assert_eq!(w.manifest, first.manifest);
        assert_eq!(w.entries, first.entries);
    }
    assert_eq!(by_record.report.skipped_stat, 5);
    assert_eq!(
        without_duration(&by_record.report),
        without_duration(&by_cache.report)
    );
    // The record does not need the change cache: with the cache damaged, nothing is read.
    store
        .save_cache(&cache_name("dir-stat", &src), b"damaged")
        .unwrap();
    let record_only = again(&store, &src);
    assert_eq!(record_only.manifest, first.manifest);
    assert_eq!(
        without_duration(&record_only.report),
        without_duration(&by_record.report),
        "a damaged change cache would have every file read"
    );
}

#[test]
fn any_change_the_walk_can_see_defeats_the_record() {
    type Change = fn(&Path);
    let changes: [(&str, Change); 10] = [
        ("content of the same size, mtime put back", |root| {
            let path = root.join("notes.md");
            let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
            std::fs::write(&path, b"# NOTES\n").unwrap();
            set_mtime(&path, mtime);
        }),
        ("mode", |root| {
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o700);
            std::fs::set_permissions(root.join("run.sh"), mode).unwrap();
        }),
        ("renamed file", |root| {
            std::fs::rename(root.join("notes.md"), root.join("notes.txt")).unwrap();
        }),
        ("new file", |root| {
            std::fs::write(root.join("new.txt"), b"new").unwrap();
            set_mtime(&root.join("new.txt"), SystemTime::UNIX_EPOCH);
        }),
        ("removed file", |root| {
            std::fs::remove_file(root.join("empty-file")).unwrap();
        }),
        ("link retargeted", |root| {
            std::fs::remove_file(root.join("link")).unwrap();
            std::os::unix::fs::symlink("notes.md", root.join("link")).unwrap();
        }),
        ("a file in the empty directory", |root| {
            std::fs::write(root.join("empty/deeper/x"), b"x").unwrap();
            set_mtime(&root.join("empty/deeper/x"), SystemTime::UNIX_EPOCH);
        }),
        ("new empty directory", |root| {
            std::fs::create_dir(root.join("fresh")).unwrap();
        }),
        ("empty directory removed", |root| {
            std::fs::remove_dir(root.join("empty/deeper")).unwrap();
        }),
        ("same bytes and times, another inode", |root| {
            let path = root.join("arrays/small.npy");
            let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
            std::fs::copy(&path, root.join("copy")).unwrap();
            set_mtime(&root.join("copy"), mtime);
            std::fs::rename(root.join("copy"), &path).unwrap();
        }),
    ];
    for (what, change) in changes {
        let (dir, store) = new_store();
        let src = dir.path().join("project");
        make_tree(&src);
        let before = snapshot_dir(&store, &src, &SnapshotSpec::new(SnapshotKind::Autosave))
            .unwrap()
            .manifest;
        assert_eq!(again(&store, &src).snapshot, None, "{what}");
        // A change in the same tick of the filesystem's clock as the walk could leave every
        // status as it was, which no status check can see; that is not what this test is about.
        std::thread::sleep(Duration::from_millis(20));
        change(&src);
        let w = again(&store, &src);
        let expected = from_scratch(&src);
        assert_eq!(w.manifest, expected, "{what}");
        assert_eq!(w.snapshot.is_some(), expected != before, "{what}");
        assert!(w.report.errors.is_empty(), "{what}: {:?}", w.report.errors);
    }
}

#[test]
fn a_file_modified_just_before_the_snapshot_is_read_again_not_vouched_for() {
    let (dir, store) = new_store();
    let src = dir.path().join("project");
    make_tree(&src);
    std::fs::write(src.join("fresh.txt"), b"written just now").unwrap();
    snapshot_dir(&store, &src, &SnapshotSpec::new(SnapshotKind::Autosave)).unwrap();
    let w = again(&store, &src);
    assert_eq!(w.snapshot, None);
    assert_eq!(
        w.report.skipped_stat, 5,
        "the racily clean file is not skipped"
    );
    assert!(w.report.bytes_hashed >= 16);
}

/// One edit of a small tree of two directories with three files each.
#[derive(Clone, Debug)]
enum Edit {
    Write { file: usize, len: usize, seed: u64 },
    Backdate { file: usize, secs: u64 },
    Chmod { file: usize, exec: bool },
    Remove { file: usize },
    Link { file: usize, to: usize },
    EmptyDir { file: usize },
    Nothing,
}

fn file_path(root: &Path, file: usize) -> std::path::PathBuf {
    root.join(["a", "b"][file % 2])
        .join(format!("f{}", file / 2))
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..6usize, 0..3000usize, any::<u64>()).prop_map(|(file, len, seed)| Edit::Write {
            file,
            len,
            seed
        }),
        (0..6usize, 1..100_000u64).prop_map(|(file, secs)| Edit::Backdate { file, secs }),
        (0..6usize, any::<bool>()).prop_map(|(file, exec)| Edit::Chmod { file, exec }),
        (0..6usize).prop_map(|file| Edit::Remove { file }),
        (0..6usize, 0..6usize).prop_map(|(file, to)| Edit::Link { file, to }),
        (0..6usize).prop_map(|file| Edit::EmptyDir { file }),
        Just(Edit::Nothing),
    ]
}

/// Removes whatever is at `path`.
fn clear(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

fn apply(root: &Path, edit: &Edit) {
    match *edit {
        Edit::Write { file, len, seed } => {
            let path = file_path(root, file);
            clear(&path);
            std::fs::write(&path, random_bytes(len, seed)).unwrap();
        }
        Edit::Backdate { file, secs } => {
            let path = file_path(root, file);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                set_mtime(&path, SystemTime::now() - Duration::from_secs(secs));
            }
        }
        Edit::Chmod { file, exec } => {
            let path = file_path(root, file);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                let mode = if exec { 0o755 } else { 0o644 };
                let mode = std::os::unix::fs::PermissionsExt::from_mode(mode);
                std::fs::set_permissions(&path, mode).unwrap();
            }
        }
        Edit::Remove { file } => clear(&file_path(root, file)),
        Edit::Link { file, to } => {
            let path = file_path(root, file);
            clear(&path);
            std::os::unix::fs::symlink(format!("../x/f{to}"), &path).unwrap();
        }
        Edit::EmptyDir { file } => {
            let path = file_path(root, file);
            clear(&path);
            std::fs::create_dir(&path).unwrap();
        }
        Edit::Nothing => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// After any edits, a new process's snapshot (by the record, or by the full check when the
    /// record cannot vouch) holds exactly the tree a store that never saw it would record.
    #[test]
    fn a_new_process_snapshot_always_holds_the_tree_as_it_is(
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let (dir, store) = new_store();
        let src = dir.path().join("project");
        for sub in ["a", "b"] {
            std::fs::create_dir_all(src.join(sub)).unwrap();
        }
        for file in 0..6 {
            let path = file_path(&src, file);
            std::fs::write(&path, random_bytes(100 + file, file as u64)).unwrap();
            set_mtime(&path, SystemTime::now() - Duration::from_secs(3600));
        }
        snapshot_dir(&store, &src, &SnapshotSpec::new(SnapshotKind::Autosave)).unwrap();
        for edit in &edits {
            // Past the filesystem clock's tick (see above).
            std::thread::sleep(Duration::from_millis(12));
            apply(&src, edit);
            let w = again(&store, &src);
            prop_assert!(w.report.errors.is_empty(), "{:?}", w.report.errors);
            prop_assert_eq!(w.manifest, from_scratch(&src), "after {:?}", edit);
        }
    }
}
