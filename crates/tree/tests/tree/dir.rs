use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use autosave_store::SnapshotKind;
use autosave_store::Store;
use autosave_tree::{
    DirWritten, RestoreOptions, SnapshotSpec, load_manifest, restore_dir, snapshot_dir,
};

use crate::{new_store, random_bytes};

pub(crate) fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("arrays/raw")).unwrap();
    std::fs::create_dir_all(root.join("empty/deeper")).unwrap();
    std::fs::write(root.join("arrays/raw/big.npy"), random_bytes(6 << 20, 1)).unwrap();
    std::fs::write(root.join("arrays/small.npy"), random_bytes(3000, 2)).unwrap();
    std::fs::write(root.join("notes.md"), b"# notes\n").unwrap();
    std::fs::write(root.join("empty-file"), b"").unwrap();
    std::fs::write(root.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("arrays/small.npy", root.join("link")).unwrap();
    std::os::unix::fs::symlink("../nowhere", root.join("dangling")).unwrap();
    let past = SystemTime::now() - Duration::from_secs(7200);
    for f in [
        "arrays/raw/big.npy",
        "arrays/small.npy",
        "notes.md",
        "empty-file",
        "run.sh",
    ] {
        std::fs::File::options()
            .write(true)
            .open(root.join(f))
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
}

/// Every path below `root` with its kind, mode, mtime (files) and bytes or link target.
fn describe(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if rel == ".autosave" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let desc = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else {
                let bytes = std::fs::read(&path).unwrap();
                format!(
                    "file {:o} {} {} {:x}",
                    meta.mode() & 0o7777,
                    meta.mtime(),
                    bytes.len(),
                    xxhash_rust_sum(&bytes)
                )
            };
            out.push((rel, desc));
        }
    }
    out.sort();
    out
}

/// The paths of a snapshot's entries, as text.
fn entry_paths(store: &Store, w: &DirWritten) -> Vec<String> {
    load_manifest(store, &w.manifest)
        .unwrap()
        .entries()
        .iter()
        .map(|e| e.path.to_string())
        .collect()
}

fn xxhash_rust_sum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn a_directory_round_trips_with_modes_mtimes_symlinks_and_empty_directories() {
    let (dir, store) = new_store();
    let src = dir.path().join("project");
    make_tree(&src);
    let w = snapshot_dir(&store, &src, &SnapshotSpec::new(SnapshotKind::Explicit)).unwrap();
    assert!(w.report.errors.is_empty(), "{:?}", w.report.errors);
    let target = dir.path().join("restored");
    let manifest = load_manifest(&store, &w.manifest).unwrap();
    assert_eq!(w.entries, manifest.entries().len() as u64);
    let report = restore_dir(&store, &manifest, &target, &RestoreOptions::default()).unwrap();
    assert_eq!((report.files, report.symlinks, report.dirs), (5, 2, 1));
    assert_eq!(describe(&target), describe(&src));
}

#[test]
fn a_second_snapshot_by_a_fresh_process_reads_only_changed_files() {
    let (dir, store) = new_store();
    let src = dir.path().join("project");
    make_tree(&src);
    let spec = SnapshotSpec::new(SnapshotKind::Autosave);
    let first = snapshot_dir(&store, &src, &spec).unwrap();
    assert_eq!(first.report.hashed, 8);
    // A new Store handle stands for a new process: the stat cache comes from the store.
    let reopened = autosave_store::Store::open(store.root()).unwrap();
    let second = snapshot_dir(&reopened, &src, &spec).unwrap();
    assert_eq!(second.report.skipped_stat, 5);
    assert_eq!(
        second.report.hashed, 3,
        "symlinks and the empty directory are cheap to re-read"
    );
    assert_eq!(second.manifest, first.manifest);

    std::fs::write(src.join("notes.md"), b"# notes\nedited\n").unwrap();
    let third = snapshot_dir(&reopened, &src, &spec).unwrap();
    assert_eq!(third.report.skipped_stat, 4);
    assert_eq!(
        third.report.bytes_hashed,
        15 + "arrays/small.npy".len() as u64 + "../nowhere".len() as u64
    );
}

#[test]
fn the_store_directory_itself_is_never_snapshotted() {
    let (dir, _) = new_store();
    let src = dir.path().join("project");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    let store = autosave_store::Store::open_or_create(
        camino::Utf8PathBuf::try_from(src.join(".autosave")).unwrap(),
    )
    .unwrap();
    let w = snapshot_dir(&store, &src, &SnapshotSpec::new(SnapshotKind::Autosave)).unwrap();
    assert_eq!(entry_paths(&store, &w), ["a"]);
}

#[test]
fn a_store_inside_the_tree_under_another_name_is_never_snapshotted() {
    let (dir, _) = new_store();
    let src = dir.path().join("project");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/a"), b"a").unwrap();
    let store = autosave_store::Store::open_or_create(
        camino::Utf8PathBuf::try_from(src.join("sub/my-store")).unwrap(),
    )
    .unwrap();
    let spec = SnapshotSpec::new(SnapshotKind::Autosave);
    for _ in 0..2 {
        let w = snapshot_dir(&store, &src, &spec).unwrap();
        assert_eq!(entry_paths(&store, &w), ["sub/a"]);
    }
}

#[test]
fn a_walked_file_is_taken_as_the_walk_saw_it_or_read_as_it_is_now() {
    let (dir, store) = new_store();
    let src = dir.path().join("project");
    make_tree(&src);
    let mut cache = autosave_tree::ChangeCache::new();
    let spec = SnapshotSpec::new(SnapshotKind::Autosave);
    let walk = || {
        autosave_tree::dir_nodes(&src, store.root().as_std_path())
            .unwrap()
            .0
    };
    let notes = |w: &autosave_tree::Written| {
        let entry = w
            .entries
            .entries()
            .iter()
            .find(|e| e.path.to_string() == "notes.md");
        autosave_tree::read_content(&store, &entry.unwrap().content).unwrap()
    };
    autosave_tree::write_snapshot(&store, &mut cache, &walk(), &spec).unwrap();

    // Unchanged when walked, changed right after: the snapshot holds the file as walked (the
    // cache vouched for that status), and the next one sees the change.
    let nodes = walk();
    std::fs::write(src.join("notes.md"), b"v2\n").unwrap();
    let as_walked = autosave_tree::write_snapshot(&store, &mut cache, &nodes, &spec).unwrap();
    assert_eq!(notes(&as_walked), b"# notes\n");
    let next = autosave_tree::write_snapshot(&store, &mut cache, &walk(), &spec).unwrap();
    assert_eq!(notes(&next), b"v2\n");

    // Changed when walked and again before being read: read as it is now, not reported as a
    // file that changed while being read.
    std::fs::write(src.join("notes.md"), b"v3\n").unwrap();
    let nodes = walk();
    std::fs::write(src.join("notes.md"), b"v4, longer\n").unwrap();
    let now = autosave_tree::write_snapshot(&store, &mut cache, &nodes, &spec).unwrap();
    assert!(now.report.errors.is_empty(), "{:?}", now.report.errors);
    assert_eq!(notes(&now), b"v4, longer\n");
}

#[test]
fn a_stat_cache_is_saved_again_only_when_it_changed() {
    let (dir, store) = new_store();
    let src = dir.path().join("project");
    make_tree(&src);
    let spec = SnapshotSpec::new(SnapshotKind::Autosave);
    let mut cache = autosave_tree::ChangeCache::new();
    assert!(!cache.changed_since_decode());
    let (nodes, _) = autosave_tree::dir_nodes(&src, store.root().as_std_path()).unwrap();
    autosave_tree::write_snapshot(&store, &mut cache, &nodes, &spec).unwrap();
    assert!(cache.changed_since_decode());

    let bytes = cache.encode();
    let mut decoded = autosave_tree::ChangeCache::decode(&bytes);
    assert!(!decoded.changed_since_decode());
    let (nodes, _) = autosave_tree::dir_nodes(&src, store.root().as_std_path()).unwrap();
    let same = autosave_tree::write_snapshot(&store, &mut decoded, &nodes, &spec).unwrap();
    assert_eq!(same.report.skipped_stat, 5);
    assert!(
        !decoded.changed_since_decode(),
        "every file was a status hit: the entries are the ones decoded"
    );
    assert_eq!(decoded.encode(), bytes);

    std::fs::write(src.join("notes.md"), b"# notes\nedited\n").unwrap();
    let (nodes, _) = autosave_tree::dir_nodes(&src, store.root().as_std_path()).unwrap();
    autosave_tree::write_snapshot(&store, &mut decoded, &nodes, &spec).unwrap();
    assert!(decoded.changed_since_decode());
    assert_ne!(decoded.encode(), bytes);

    assert!(autosave_tree::ChangeCache::decode(b"not a cache").changed_since_decode());
}

#[test]
fn a_decoded_cache_that_matches_the_tree_stays_as_decoded_and_still_sees_the_next_change() {
    let (dir, store) = new_store();
    let src = dir.path().join("project");
    std::fs::create_dir_all(src.join("b")).unwrap();
    let past = SystemTime::now() - Duration::from_secs(7200);
    for (name, bytes) in [
        ("a.txt", &b"alpha"[..]),
        ("b/c.bin", &random_bytes(5000, 3)),
    ] {
        std::fs::write(src.join(name), bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(src.join(name))
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
    let walk = || {
        autosave_tree::dir_nodes(&src, store.root().as_std_path())
            .unwrap()
            .0
    };
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    let mut first_cache = autosave_tree::ChangeCache::new();
    let first = autosave_tree::write_snapshot(&store, &mut first_cache, &walk(), &spec).unwrap();
    spec.unless_manifest = Some(first.manifest);

    // A new process: every file is a status hit, so the cache is left exactly as decoded.
    let bytes = first_cache.encode();
    let mut cache = autosave_tree::ChangeCache::decode(&bytes);
    for _ in 0..2 {
        let same = autosave_tree::write_snapshot(&store, &mut cache, &walk(), &spec).unwrap();
        assert_eq!(same.snapshot, None);
        assert_eq!(same.manifest, first.manifest);
        assert_eq!(same.entries.entries().len(), 2);
        assert_eq!(same.report.skipped_stat, 2);
        assert!(!cache.changed_since_decode());
        assert_eq!(cache.encode(), bytes);
    }

    std::fs::write(src.join("b/c.bin"), b"changed").unwrap();
    let changed = autosave_tree::write_snapshot(&store, &mut cache, &walk(), &spec).unwrap();
    assert!(changed.snapshot.is_some());
    assert_ne!(changed.manifest, first.manifest);
    assert!(cache.changed_since_decode());
    let entry = changed
        .entries
        .entries()
        .iter()
        .find(|e| e.path.to_string() == "b/c.bin")
        .unwrap();
    assert_eq!(
        autosave_tree::read_content(&store, &entry.content).unwrap(),
        b"changed"
    );
}
