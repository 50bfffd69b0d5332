//! A small valid store, damaged by fuzzer-chosen mutations (bit flips, truncations, overwrites,
//! appended bytes, deletions of any file or fan-out directory), then opened and its newest
//! snapshot read with every entry: never a panic, and every read is the exact original bytes or
//! a typed error.
#![no_main]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use autosave_store::{ChunkParams, Digest, Options, SnapshotKind, Store};
use autosave_tree::{
    ChangeCache, EntryPath, Manifest, Node, SnapshotSpec, read_content, snapshot_manifest,
    write_snapshot,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// The reference store: its files (relative path → bytes), and each snapshot's manifest with
/// the exact content of every entry.
struct Reference {
    files: Vec<(PathBuf, Vec<u8>)>,
    dirs: Vec<PathBuf>,
    manifests: BTreeMap<Digest, (Manifest, BTreeMap<EntryPath, Vec<u8>>)>,
}

fn options() -> Options {
    Options {
        create: true,
        inline_limit: 4096,
        chunking: ChunkParams {
            threshold: 32 << 10,
            min: 2 << 10,
            avg: 8 << 10,
            max: 16 << 10,
        },
        ..Options::default()
    }
}

fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn reference() -> &'static Reference {
    static R: OnceLock<Reference> = OnceLock::new();
    R.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = camino::Utf8Path::from_path(dir.path())
            .expect("UTF-8")
            .join(".autosave");
        let store = Store::open_with(&root, options()).expect("create the store");
        let mut cache = ChangeCache::new();
        let trees: [Vec<(&str, Vec<u8>)>; 2] = [
            vec![
                ("note", b"a short note kept in the manifest".to_vec()),
                ("cfg", noise(1500, 1)),
                ("array", vec![7u8; 20_000]),
                ("random", noise(9000, 2)),
            ],
            vec![
                ("note", b"an edited note".to_vec()),
                ("cfg", noise(1500, 3)),
                ("array", vec![7u8; 20_000]),
                ("big", noise(60_000, 4)),
            ],
        ];
        let mut manifests = BTreeMap::new();
        for (i, tree) in trees.iter().enumerate() {
            let nodes: Vec<Node<'_>> = tree
                .iter()
                .map(|(name, bytes)| Node::bytes(EntryPath::new([*name]), "bytes", bytes))
                .collect();
            let kind = if i == 0 {
                SnapshotKind::Explicit
            } else {
                SnapshotKind::Autosave
            };
            let written = write_snapshot(&store, &mut cache, &nodes, &SnapshotSpec::new(kind))
                .expect("snapshot");
            let contents = tree
                .iter()
                .map(|(n, b)| (EntryPath::new([*n]), b.clone()))
                .collect();
            manifests.insert(written.manifest, ((*written.entries).clone(), contents));
        }
        // Captured while the store is open, so the index's WAL is part of the reference.
        let (files, dirs) = capture(dir.path().join(".autosave").as_path());
        drop(store);
        Reference {
            files,
            dirs,
            manifests,
        }
    })
}

fn capture(root: &Path) -> (Vec<(PathBuf, Vec<u8>)>, Vec<PathBuf>) {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(root.join(&rel))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        for name in names {
            let rel = rel.join(name);
            let full = root.join(&rel);
            if full.is_dir() {
                dirs.push(rel.clone());
                stack.push(rel);
            } else {
                files.push((rel, std::fs::read(&full).expect("read")));
            }
        }
    }
    (files, dirs)
}

/// Applies one fuzzer-chosen mutation to the in-memory copy of the files; a deletion is returned
/// as the path to remove once the copy is on disk.
fn mutate(
    u: &mut Unstructured<'_>,
    r: &Reference,
    files: &mut [Vec<u8>],
) -> Result<Option<PathBuf>> {
    let which = u.choose_index(files.len() + r.dirs.len())?;
    if which >= files.len() {
        return Ok(Some(r.dirs[which - files.len()].clone()));
    }
    let bytes = &mut files[which];
    let len = bytes.len();
    match u.int_in_range(0..=5u8)? {
        0 if len > 0 => {
            let at = u.choose_index(len)?;
            bytes[at] ^= 1 << u.int_in_range(0..=7u8)?;
        }
        1 => bytes.truncate(u.int_in_range(0..=len)?),
        2 if len > 0 => {
            let at = u.choose_index(len)?;
            let patch: Vec<u8> = u.arbitrary()?;
            for (slot, b) in bytes.iter_mut().skip(at).zip(patch) {
                *slot = b;
            }
        }
        3 => {
            let extra: Vec<u8> = u.arbitrary()?;
            bytes.extend(extra);
        }
        4 => return Ok(Some(r.files[which].0.clone())),
        _ => {
            let other = u.choose_index(files.len())?;
            files.swap(which, other);
        }
    }
    Ok(None)
}

fn write_copy(r: &Reference, root: &Path, files: &[Vec<u8>]) {
    for dir in &r.dirs {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    for ((rel, _), bytes) in r.files.iter().zip(files) {
        #[expect(
            clippy::disallowed_methods,
            reason = "the fuzzer writes a damaged copy on purpose"
        )]
        std::fs::write(root.join(rel), bytes).expect("write");
    }
}

/// Opens the damaged store and reads its newest snapshot; any `Ok` must be exact.
fn read_newest(r: &Reference, root: &camino::Utf8Path) {
    let Ok(store) = Store::open(root) else { return };
    let Ok(Some(latest)) = store.latest() else {
        return;
    };
    let Ok(manifest) = snapshot_manifest(&store, latest.id) else {
        return;
    };
    let (expected, contents) = r
        .manifests
        .get(&latest.manifest)
        .expect("a manifest that reads back is one the reference wrote");
    assert_eq!(&manifest, expected, "wrong manifest returned");
    for entry in manifest.entries() {
        if let Ok(bytes) = read_content(&store, &entry.content) {
            assert!(
                bytes == contents[&entry.path],
                "wrong bytes returned for {}",
                entry.path
            );
        }
    }
    let _ = store.verify(true);
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let r = reference();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join(".autosave");
    let mut files: Vec<Vec<u8>> = r.files.iter().map(|(_, b)| b.clone()).collect();
    let mut removals = Vec::new();
    for _ in 0..u.int_in_range(1..=3u8)? {
        removals.extend(mutate(u, r, &mut files)?);
    }
    write_copy(r, &root, &files);
    for rel in removals {
        let path = root.join(rel);
        let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
    }
    read_newest(r, camino::Utf8Path::from_path(&root).expect("UTF-8"));
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
