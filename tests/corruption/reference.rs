//! The reference store every mutation starts from: a baseline and three autosaves written by a
//! session, with inline entries, inline blobs, compressed (plain and as byte planes) and raw blob
//! files, and chunked content, captured file by file while the session is open (so the index's
//! WAL is part of it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use autosave::store::{ChunkParams, Digest, Store};
use autosave::tree::{EntryPath, Manifest, Node, STORE_DIR_NAME};
use autosave::{Options, Session};
use camino::Utf8Path;

/// What a file of the store is, for the matrix's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FileKind {
    Blob,
    Index,
    /// `index.sqlite` after the last connection closed: checkpointed, no WAL, every row in it.
    IndexClosed,
    Wal,
    Shm,
    Format,
    Other,
}

impl FileKind {
    pub(crate) fn of(rel: &Path) -> Self {
        match rel.to_str().unwrap_or_default() {
            "index.sqlite" => Self::Index,
            "index.sqlite-wal" => Self::Wal,
            "index.sqlite-shm" => Self::Shm,
            "FORMAT" => Self::Format,
            s if s.starts_with("objects/") => Self::Blob,
            _ => Self::Other,
        }
    }

    /// Whether damage to this file can take index rows (snapshots, inline blobs) with it.
    pub(crate) fn holds_index(self) -> bool {
        matches!(
            self,
            Self::Index | Self::IndexClosed | Self::Wal | Self::Shm
        )
    }
}

/// One file of the reference store.
#[derive(Clone, Debug)]
pub(crate) struct RefFile {
    /// Path relative to the store directory.
    pub(crate) rel: PathBuf,
    pub(crate) kind: FileKind,
    pub(crate) bytes: Vec<u8>,
    /// The blob it holds, for blob files.
    pub(crate) digest: Option<Digest>,
}

/// One snapshot of the reference, with the exact content of each entry.
#[derive(Clone, Debug)]
pub(crate) struct RefSnapshot {
    pub(crate) id: u64,
    pub(crate) created_ns: i64,
    pub(crate) manifest_digest: Digest,
    /// Its snapshot record blob.
    pub(crate) record: Digest,
    pub(crate) manifest: Manifest,
    pub(crate) contents: BTreeMap<EntryPath, Vec<u8>>,
    /// Every blob it needs: manifest, record, and content blobs.
    pub(crate) blobs: Vec<Digest>,
}

/// The reference store, held in memory.
#[derive(Clone, Debug)]
pub(crate) struct Reference {
    pub(crate) files: Vec<RefFile>,
    /// Fan-out directories, relative to the store directory.
    pub(crate) fanouts: Vec<PathBuf>,
    /// Oldest first; the last one is the newest autosave.
    pub(crate) snapshots: Vec<RefSnapshot>,
    /// Blobs stored inline in the index (their bytes exist nowhere else).
    pub(crate) inline: Vec<Digest>,
    /// Every blob's exact bytes.
    pub(crate) blobs: BTreeMap<Digest, Vec<u8>>,
}

pub(crate) fn store_options() -> autosave::store::Options {
    autosave::store::Options {
        inline_limit: 4096,
        chunking: ChunkParams {
            threshold: 32 << 10,
            min: 2 << 10,
            avg: 8 << 10,
            max: 16 << 10,
        },
        ..autosave::store::Options::default()
    }
}

pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    autosave::sample::noise(len, seed)
}

/// Compressible bytes: a slow ramp with a little noise.
fn compressible(len: usize, seed: u64) -> Vec<u8> {
    let n = noise(len, seed);
    (0..len).map(|i| (i / 300) as u8 ^ (n[i] & 3)).collect()
}

/// float64 samples of a slow signal with noisy low bytes: stored as byte planes.
fn signal(len: usize, seed: u64) -> Vec<u8> {
    let n = noise(len, seed);
    let mut out = Vec::with_capacity(len);
    for (k, low) in n.chunks(8).enumerate() {
        let high = (50.0 + (k as f64 * 1e-3).sin()).to_le_bytes();
        out.extend(
            low.iter()
                .enumerate()
                .map(|(lane, b)| if lane < 5 { *b } else { high[lane] }),
        );
    }
    out
}

type Tree = Vec<(Vec<&'static str>, Vec<u8>)>;

fn trees() -> [Tree; 4] {
    let big = noise(60_000, 5);
    let mut big_edited = big.clone();
    big_edited[40_000..40_100].copy_from_slice(&noise(100, 6));
    let base: Tree = vec![
        (
            vec!["notes", "today"],
            b"a short note kept in the manifest".to_vec(),
        ),
        (vec!["config"], noise(1500, 1)),
        (vec!["arrays", "smooth"], compressible(20_000, 2)),
        (vec!["arrays", "random"], noise(9000, 3)),
        (vec!["arrays", "big"], big),
        (vec!["arrays", "signal"], signal(12_000, 4)),
    ];
    let mut a1 = base.clone();
    a1[0].1 = b"edited once".to_vec();
    a1[1].1 = noise(1500, 11);
    let mut a2 = a1.clone();
    a2[3].1 = noise(9000, 12);
    a2[4].1 = big_edited;
    let mut a3 = a2.clone();
    a3[0].1 = b"edited three times".to_vec();
    a3[1].1 = noise(2000, 13);
    a3.push((vec!["tables", "runs"], compressible(6000, 14)));
    [base, a1, a2, a3]
}

fn nodes(tree: &Tree) -> Vec<Node<'_>> {
    tree.iter()
        .map(|(path, bytes)| Node::bytes(EntryPath::new(path.iter().copied()), "bytes", bytes))
        .collect()
}

/// Builds the reference store in `project`, returning it captured in memory twice: while the
/// session is open (most rows in the WAL), and after it closed (every row in `index.sqlite`).
pub(crate) fn build(project: &Utf8Path) -> (Reference, Reference) {
    let options = Options {
        store: store_options(),
        ..Options::default()
    };
    let mut session = Session::open(project, options).unwrap();
    let trees = trees();
    session.save_explicit(&nodes(&trees[0])).unwrap();
    for tree in &trees[1..] {
        let report = session.autosave(&nodes(tree)).unwrap();
        assert!(report.snapshot.is_some(), "each reference tree differs");
    }
    let store = session.store();
    let snapshots = describe(store, &trees);
    let root = project.join(STORE_DIR_NAME);
    let (files, fanouts) = capture(root.as_std_path());
    assert!(
        files.iter().any(|f| f.kind == FileKind::Wal),
        "the index has a WAL while the session is open"
    );
    assert!(store.verify(true).unwrap().is_clean());
    assert!(
        files
            .iter()
            .any(|f| f.digest.is_some() && f.bytes.get(5) == Some(&3)),
        "the reference holds a blob file of 8 byte planes"
    );
    let blobs: BTreeMap<Digest, Vec<u8>> = snapshots
        .iter()
        .flat_map(|s| s.blobs.iter())
        .map(|d| (*d, store.get(d).unwrap().expect("every blob reads back")))
        .collect();
    let on_file: Vec<Digest> = files.iter().filter_map(|f| f.digest).collect();
    let inline = blobs
        .keys()
        .filter(|d| !on_file.contains(d))
        .copied()
        .collect();
    drop(session);
    let live = Reference {
        files,
        fanouts,
        snapshots,
        inline,
        blobs,
    };
    let (mut files, _) = capture(root.as_std_path());
    assert!(
        !files.iter().any(|f| f.kind == FileKind::Wal),
        "closing checkpoints the WAL"
    );
    for f in &mut files {
        if f.kind == FileKind::Index {
            f.kind = FileKind::IndexClosed;
        }
    }
    let closed = Reference {
        files,
        ..live.clone()
    };
    (live, closed)
}

fn describe(store: &Store, trees: &[Tree]) -> Vec<RefSnapshot> {
    let infos = store.snapshots().unwrap();
    assert_eq!(
        infos.len(),
        trees.len(),
        "retention kept every reference snapshot"
    );
    infos
        .iter()
        .zip(trees)
        .map(|(info, tree)| {
            let manifest = autosave::tree::snapshot_manifest(store, info.id).unwrap();
            let mut blobs = manifest.blobs();
            blobs.extend([info.manifest, info.record]);
            blobs.sort();
            blobs.dedup();
            RefSnapshot {
                id: info.id.0,
                created_ns: info.created_ns,
                manifest_digest: info.manifest,
                record: info.record,
                manifest,
                contents: tree
                    .iter()
                    .map(|(p, b)| (EntryPath::new(p.iter().copied()), b.clone()))
                    .collect(),
                blobs,
            }
        })
        .collect()
}

/// Every file (sorted) and fan-out directory of the store at `root`.
fn capture(root: &Path) -> (Vec<RefFile>, Vec<PathBuf>) {
    let mut files = Vec::new();
    let mut fanouts = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel)).unwrap() {
            let rel = rel.join(entry.unwrap().file_name());
            if root.join(&rel).is_dir() {
                if rel.starts_with("objects") {
                    fanouts.push(rel.clone());
                }
                stack.push(rel);
                continue;
            }
            let digest = rel
                .starts_with("objects")
                .then(|| rel.file_name().unwrap().to_str().unwrap().parse().unwrap());
            files.push(RefFile {
                kind: FileKind::of(&rel),
                bytes: std::fs::read(root.join(&rel)).unwrap(),
                rel,
                digest,
            });
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    fanouts.sort();
    (files, fanouts)
}

/// Writes the reference (with `files` in place of its bytes, `None` for a deleted file) to a
/// fresh store directory `root`.
pub(crate) fn write_copy(reference: &Reference, files: &[Option<Vec<u8>>], root: &Path) {
    if root.exists() {
        std::fs::remove_dir_all(root).unwrap();
    }
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    for dir in &reference.fanouts {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (f, bytes) in reference.files.iter().zip(files) {
        if let Some(bytes) = bytes {
            std::fs::write(root.join(&f.rel), bytes).unwrap();
        }
    }
}
