use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use autosave_tree::{
    ChangeCache, Content, Durability, EntryPath, Error, Manifest, ManifestEntry, RestoreOptions,
    restore_dir,
};

use crate::new_store;

fn manifest_with(keys: &[&str], kind: &str) -> Manifest {
    let mut entries = vec![ManifestEntry {
        path: EntryPath::new(keys.iter().copied()),
        kind: kind.into(),
        meta: "{}".into(),
        content: Content::Inline(b"x".to_vec()),
    }];
    if kind == "file" {
        entries.push(ManifestEntry {
            path: EntryPath::new(["ok"]),
            kind: "file".into(),
            meta: "{}".into(),
            content: Content::Inline(b"fine".to_vec()),
        });
    }
    Manifest::new(entries).unwrap()
}

#[test]
fn a_path_that_would_escape_the_target_is_refused_before_anything_is_written() {
    let (dir, store) = new_store();
    let cases: [&[&str]; 7] = [
        &[".."],
        &["a", ".."],
        &["."],
        &[""],
        &["a/../../etc"],
        &["/etc"],
        &["nul\0"],
    ];
    for keys in cases {
        let target = dir.path().join("target");
        let result = restore_dir(
            &store,
            &manifest_with(keys, "file"),
            &target,
            &RestoreOptions::default(),
        );
        assert!(
            matches!(result, Err(Error::UnsafePath { .. })),
            "{keys:?}: {result:?}"
        );
        assert!(!target.exists(), "{keys:?}: something was written");
    }
}

#[test]
fn a_path_below_a_symlink_entry_is_refused() {
    let (dir, store) = new_store();
    let m = Manifest::new(vec![
        ManifestEntry {
            path: EntryPath::new(["link"]),
            kind: "symlink".into(),
            meta: "{}".into(),
            content: Content::Inline(b"/etc".to_vec()),
        },
        ManifestEntry {
            path: EntryPath::new(["link", "passwd"]),
            kind: "file".into(),
            meta: "{}".into(),
            content: Content::Inline(b"pwned".to_vec()),
        },
    ])
    .unwrap();
    let target = dir.path().join("target");
    assert!(matches!(
        restore_dir(&store, &m, &target, &RestoreOptions::default()),
        Err(Error::UnsafePath { .. })
    ));
}

#[test]
fn a_symlink_already_in_the_target_is_not_followed() {
    let (dir, store) = new_store();
    let target = dir.path().join("target");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("sub")).unwrap();
    let m = Manifest::new(vec![ManifestEntry {
        path: EntryPath::new(["sub", "f"]),
        kind: "file".into(),
        meta: "{}".into(),
        content: Content::Inline(b"x".to_vec()),
    }])
    .unwrap();
    let options = RestoreOptions {
        force: true,
        ..RestoreOptions::default()
    };
    assert!(restore_dir(&store, &m, &target, &options).is_err());
    assert!(!outside.join("f").exists());
}

#[test]
fn a_target_whose_files_stand_in_the_way_is_refused_before_anything_is_written() {
    let (dir, store) = new_store();
    let entry = |keys: &[&str], kind: &str| ManifestEntry {
        path: EntryPath::new(keys.iter().copied()),
        kind: kind.into(),
        meta: "{}".into(),
        content: Content::Inline(b"new".to_vec()),
    };
    // "a" sorts first and would be written first; each case has something in the way later.
    let m = Manifest::new(vec![
        entry(&["a"], "file"),
        entry(&["empty"], "dir"),
        entry(&["sub", "f"], "file"),
        entry(&["z"], "file"),
    ])
    .unwrap();
    let options = RestoreOptions {
        force: true,
        ..RestoreOptions::default()
    };
    type Setup = fn(&std::path::Path);
    let cases: [(&str, Setup); 4] = [
        ("sub", |t| std::fs::write(t.join("sub"), b"mine").unwrap()),
        ("z", |t| {
            std::fs::create_dir_all(t.join("z/inner")).unwrap();
            std::fs::write(t.join("z/inner/data"), b"precious").unwrap();
        }),
        ("empty", |t| {
            std::fs::write(t.join("empty"), b"mine").unwrap()
        }),
        ("sub", |t| {
            std::os::unix::fs::symlink("elsewhere", t.join("sub")).unwrap()
        }),
    ];
    for (n, (in_the_way, setup)) in cases.into_iter().enumerate() {
        let target = dir.path().join(format!("target-{n}"));
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("a"), b"old").unwrap();
        setup(&target);
        match autosave_tree::check_restore(&m, &target, &options) {
            Err(Error::RestoreConflict { path, .. }) => assert_eq!(path, target.join(in_the_way)),
            other => panic!("case {n}: expected a conflict, got {other:?}"),
        }
        let err = restore_dir(&store, &m, &target, &options).unwrap_err();
        assert!(matches!(err, Error::RestoreConflict { .. }), "{err}");
        assert_eq!(std::fs::read(target.join("a")).unwrap(), b"old", "case {n}");
    }
    // What merely differs is no conflict: a file over a file or a symlink, a directory that is
    // there already.
    let target = dir.path().join("target-ok");
    std::fs::create_dir_all(target.join("sub")).unwrap();
    std::fs::create_dir_all(target.join("empty")).unwrap();
    std::os::unix::fs::symlink("elsewhere", target.join("a")).unwrap();
    std::fs::write(target.join("sub/f"), b"old").unwrap();
    restore_dir(&store, &m, &target, &options).unwrap();
    assert_eq!(std::fs::read(target.join("a")).unwrap(), b"new");
    assert_eq!(std::fs::read(target.join("sub/f")).unwrap(), b"new");
}

#[test]
fn a_non_empty_target_needs_force() {
    let (dir, store) = new_store();
    let target = dir.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("mine"), b"keep").unwrap();
    let m = manifest_with(&["a"], "file");
    assert!(matches!(
        restore_dir(&store, &m, &target, &RestoreOptions::default()),
        Err(Error::TargetNotEmpty { .. })
    ));
    let options = RestoreOptions {
        force: true,
        ..RestoreOptions::default()
    };
    restore_dir(&store, &m, &target, &options).unwrap();
    assert_eq!(std::fs::read(target.join("mine")).unwrap(), b"keep");
    assert_eq!(std::fs::read(target.join("a")).unwrap(), b"x");
}

/// A restore killed mid-file (Ctrl-C ends the command-line tool at once) leaves its temp file;
/// the next restore into the same target removes those of processes that no longer run, and
/// keeps those of a restore that may still be writing.
#[cfg(target_os = "linux")]
#[test]
fn a_restore_removes_the_temp_files_of_killed_restores_and_keeps_running_ones() {
    let (dir, store) = new_store();
    let target = dir.path().join("target");
    std::fs::create_dir_all(target.join("sub")).unwrap();
    // No process has an id above the kernel's limit (at most 2^22); process 1 always runs.
    let dead = [
        target.join(".autosave-restore-4194305-0"),
        target.join("sub/.autosave-restore-4294967295-12"),
    ];
    let running = target.join(".autosave-restore-1-3");
    let unrelated = [
        target.join(".autosave-restore-notes"),
        target.join(".autosave-restore-4194305"),
    ];
    for path in dead.iter().chain([&running]).chain(&unrelated) {
        std::fs::write(path, b"partial").unwrap();
    }
    let mut entries = manifest_with(&["a"], "file").entries().to_vec();
    entries.push(ManifestEntry {
        path: EntryPath::new(["sub", "b"]),
        kind: "file".into(),
        meta: "{}".into(),
        content: Content::Inline(b"b".to_vec()),
    });
    let m = Manifest::new(entries).unwrap();
    let options = RestoreOptions {
        force: true,
        ..RestoreOptions::default()
    };
    let report = restore_dir(&store, &m, &target, &options).unwrap();
    assert_eq!(report.stale_temps_removed, 2);
    for path in &dead {
        assert!(!path.exists(), "{}", path.display());
    }
    assert!(running.exists());
    for path in &unrelated {
        assert!(path.exists(), "{}", path.display());
    }
    assert_eq!(std::fs::read(target.join("sub/b")).unwrap(), b"b");
}

#[test]
fn restoring_only_a_subtree_writes_only_it() {
    let (dir, store) = new_store();
    let m = Manifest::new(vec![
        ManifestEntry {
            path: EntryPath::new(["a", "1"]),
            kind: "file".into(),
            meta: r#"{"mode":416}"#.into(),
            content: Content::Inline(b"one".to_vec()),
        },
        ManifestEntry {
            path: EntryPath::new(["b", "2"]),
            kind: "file".into(),
            meta: "{}".into(),
            content: Content::Inline(b"two".to_vec()),
        },
    ])
    .unwrap();
    let target = dir.path().join("t");
    let options = RestoreOptions {
        only: Some(EntryPath::new(["a"])),
        ..RestoreOptions::default()
    };
    let report = restore_dir(&store, &m, &target, &options).unwrap();
    assert_eq!(report.files, 1);
    assert_eq!(std::fs::read(target.join("a/1")).unwrap(), b"one");
    assert_eq!(
        std::fs::metadata(target.join("a/1"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    assert!(!target.join("b").exists());
    let missing = RestoreOptions {
        only: Some(EntryPath::new(["zzz"])),
        ..RestoreOptions::default()
    };
    assert!(matches!(
        restore_dir(&store, &m, &dir.path().join("u"), &missing),
        Err(Error::NoSuchEntry { .. })
    ));
    let _ = ChangeCache::new();
}

/// The manifest of a snapshot of `src`, whose entry at `chunked` must hold more than four
/// chunks.
fn snapshot_with_chunked(store: &autosave_store::Store, src: &Path, chunked: &[&str]) -> Manifest {
    let w = autosave_tree::snapshot_dir(
        store,
        src,
        &autosave_tree::SnapshotSpec::new(autosave_store::SnapshotKind::Autosave),
    )
    .unwrap();
    let manifest = autosave_tree::load_manifest(store, &w.manifest).unwrap();
    let entry = manifest
        .get(&EntryPath::new(chunked.iter().copied()))
        .unwrap();
    assert!(matches!(&entry.content, Content::Chunks(c) if c.len() > 4));
    manifest
}

#[test]
fn a_chunked_file_is_restored_byte_for_byte_with_its_mode() {
    let (dir, store) = crate::new_store_with(crate::SMALL_CHUNKS);
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("deep/er")).unwrap();
    let big = crate::random_bytes(700_000, 77);
    std::fs::write(src.join("deep/er/big.npy"), &big).unwrap();
    std::fs::set_permissions(
        src.join("deep/er/big.npy"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(src.join("small.txt"), b"small").unwrap();
    let manifest = snapshot_with_chunked(&store, &src, &["deep", "er", "big.npy"]);
    let target = dir.path().join("out");
    let report = restore_dir(&store, &manifest, &target, &RestoreOptions::default()).unwrap();
    assert_eq!(report.files, 2);
    assert_eq!(report.bytes, 700_000 + 5);
    assert!(std::fs::read(target.join("deep/er/big.npy")).unwrap() == big);
    let meta = std::fs::metadata(target.join("deep/er/big.npy")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read(target.join("small.txt")).unwrap(), b"small");
}

#[test]
fn a_durable_restore_of_files_past_the_write_behind_window_is_byte_for_byte() {
    // A restore drops a file's clean pages from the page cache every 16 MiB written (here by
    // the parallel chunk writer, more than twice) and, when durable, after its fsync: none of
    // it may change a byte, with fsyncs or without.
    let (dir, store) = crate::new_store();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let big = crate::random_bytes(40 << 20, 78);
    std::fs::write(src.join("big.npy"), &big).unwrap();
    std::fs::write(src.join("small.txt"), b"small").unwrap();
    let manifest = snapshot_with_chunked(&store, &src, &["big.npy"]);
    for durability in [Durability::Synced, Durability::Unsynced] {
        let target = dir.path().join(format!("out-{durability:?}"));
        let options = RestoreOptions {
            durability,
            ..RestoreOptions::default()
        };
        let report = restore_dir(&store, &manifest, &target, &options).unwrap();
        assert_eq!(report.bytes, (40 << 20) + 5);
        assert!(std::fs::read(target.join("big.npy")).unwrap() == big);
        assert_eq!(std::fs::read(target.join("small.txt")).unwrap(), b"small");
    }
}

#[test]
fn a_chunk_whose_length_disagrees_with_the_manifest_fails_the_restore() {
    let (dir, store) = crate::new_store_with(crate::SMALL_CHUNKS);
    let bytes = crate::random_bytes(300_000, 78);
    let w = crate::autosave(
        &store,
        &mut ChangeCache::new(),
        &[autosave_tree::Node::bytes(
            EntryPath::new(["x"]),
            "file",
            &bytes,
        )],
    );
    let Content::Chunks(mut chunks) = w.entries.entries()[0].content.clone() else {
        panic!("not chunked");
    };
    assert!(chunks.len() > 1);
    chunks[0].len += 1;
    let m = Manifest::new(vec![ManifestEntry {
        path: EntryPath::new(["x"]),
        kind: "file".into(),
        meta: "{}".into(),
        content: Content::Chunks(chunks),
    }])
    .unwrap();
    let target = dir.path().join("out");
    let err = restore_dir(&store, &m, &target, &RestoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("the manifest says"), "{err}");
    assert!(
        !target.join("x").exists(),
        "no partial file is left at the name"
    );
}
