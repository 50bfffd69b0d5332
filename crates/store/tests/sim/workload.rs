//! Workloads: store-level autosaves (a tree of named nodes becomes blobs, a manifest naming
//! them, and one committed snapshot), retention and GC, and a model of what was acknowledged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use autosave_store::{Digest, NewSnapshot, Options, SnapshotId, SnapshotKind, Store};
use camino::{Utf8Path, Utf8PathBuf};

use super::crash::CrashState;
use super::fs::SimFs;

/// A tree as the host hands it in: node name to content.
pub type Tree = BTreeMap<String, Vec<u8>>;

/// Something the workload did that the oracle must account for.
#[derive(Clone, Debug)]
pub enum Event {
    /// `commit` returned this snapshot: it must survive any later crash.
    Acked(SnapshotId, Digest),
    /// Retention started deleting these snapshots: from now on they may be gone.
    DeleteBegun(Vec<SnapshotId>),
}

/// What the workload did and was told.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Every tree a commit was attempted with, by its manifest's digest.
    pub trees: HashMap<Digest, Tree>,
    pub events: Vec<Event>,
}

impl Model {
    fn event(&mut self, sim: &SimFs, event: Event) {
        self.events.push(event);
        sim.event();
    }

    /// The snapshots that must be present after a crash once `events` events had happened.
    pub fn required(&self, events: usize) -> Vec<(SnapshotId, Digest)> {
        let seen = &self.events[..events];
        let deleted: BTreeSet<SnapshotId> = seen
            .iter()
            .filter_map(|e| match e {
                Event::DeleteBegun(ids) => Some(ids.clone()),
                Event::Acked(..) => None,
            })
            .flatten()
            .collect();
        seen.iter()
            .filter_map(|e| match e {
                Event::Acked(id, m) if !deleted.contains(id) => Some((*id, *m)),
                _ => None,
            })
            .collect()
    }

    /// One tree holding every content the workload ever stored, for the autosave after
    /// recovery: any of them may be deduplicated against what the crash left.
    pub fn everything(&self) -> Tree {
        let all: BTreeSet<&Vec<u8>> = self.trees.values().flat_map(|t| t.values()).collect();
        let mut tree: Tree = all
            .into_iter()
            .enumerate()
            .map(|(i, c)| (format!("all-{i:03}"), c.clone()))
            .collect();
        tree.insert("marker".into(), b"recovered".repeat(40));
        tree
    }

    /// The model as it stood at a crash state (for recovering from it).
    pub fn at(&self, events: usize) -> Self {
        Self {
            trees: self.trees.clone(),
            events: self.events[..events].to_vec(),
        }
    }
}

/// Store options for simulated runs: small blobs become files too (inline limit 256 bytes).
pub fn options(vfs: Arc<SimFs>) -> Options {
    Options {
        create: true,
        inline_limit: 256,
        vfs,
        ..Options::default()
    }
}

/// The manifest of a tree: one `name<TAB>digest` line per node.
pub fn manifest(store: &Store, tree: &Tree) -> Vec<u8> {
    let mut out = String::new();
    for (name, bytes) in tree {
        out.push_str(&format!("{name}\t{}\n", store.digest_of(bytes)));
    }
    out.into_bytes()
}

/// Autosaves `tree`: puts every node, then the manifest, then commits.
pub fn autosave(
    store: &Store,
    sim: &SimFs,
    model: &mut Model,
    tree: &Tree,
) -> autosave_store::Result<SnapshotId> {
    let manifest_bytes = manifest(store, tree);
    model
        .trees
        .insert(store.digest_of(&manifest_bytes), tree.clone());
    let batch = store.batch()?;
    let mut refs = Vec::new();
    for bytes in tree.values() {
        refs.push(batch.put(bytes)?.digest);
    }
    let m = batch.put_file(&manifest_bytes)?.digest;
    let mut snapshot = NewSnapshot::new(SnapshotKind::Autosave, m);
    snapshot.refs = refs;
    let id = batch.commit(snapshot)?.id;
    model.event(sim, Event::Acked(id, m));
    Ok(id)
}

/// Keeps the newest `keep` snapshots, deletes the rest and collects garbage.
pub fn retention(
    store: &Store,
    sim: &SimFs,
    model: &mut Model,
    keep: usize,
) -> autosave_store::Result<()> {
    let ids: Vec<SnapshotId> = store.snapshots()?.iter().map(|s| s.id).collect();
    let old = ids[..ids.len().saturating_sub(keep)].to_vec();
    model.event(sim, Event::DeleteBegun(old.clone()));
    store.delete_snapshots(&old)?;
    store.gc()?;
    Ok(())
}

/// Deterministic content of node `i` at version `v`: mostly files of 0.3–1.8 KiB (random or
/// compressible), every fourth one small enough to live in the index.
pub fn content(i: u64, v: u64) -> Vec<u8> {
    let mut rng = super::crash::Rng::new(i * 1000 + v + 1);
    let len = if i % 4 == 3 {
        100
    } else {
        300 + (i * 137 % 1500) as usize
    };
    if i.is_multiple_of(3) {
        let words = [&b"alpha "[..], b"beta ", b"gamma ", b"delta "];
        let mut out = Vec::new();
        while out.len() < len {
            out.extend_from_slice(words[rng.below(4) as usize]);
        }
        out.truncate(len);
        out
    } else {
        (0..len).map(|_| rng.next() as u8).collect()
    }
}

/// A tree of nodes `0..n`, node `i` at version `versions(i)`.
pub fn tree(n: u64, versions: impl Fn(u64) -> u64) -> Tree {
    (0..n)
        .map(|i| (format!("node-{i:03}"), content(i, versions(i))))
        .collect()
}

/// The trees of the incremental workloads: each changes a few nodes of the one before.
pub fn generation(g: u64) -> Tree {
    let mut t = tree(8, |i| match (g, i) {
        (2.., 1 | 4) => 1,
        _ => 0,
    });
    if g >= 2 {
        t.remove("node-007");
        t.insert("node-008".into(), content(8, 0));
    }
    if g >= 3 {
        t.insert("node-002".into(), content(2, 2));
        t.insert("node-004".into(), content(4, 2));
    }
    if g >= 4 {
        t.insert("node-000".into(), content(0, 3));
    }
    t
}

/// A real directory for SQLite's files (and `LOCK`), on a memory filesystem when there is one.
pub fn real_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let builder = tempfile::Builder::new()
        .prefix("autosave-sim-")
        .tempdir_in(shm);
    builder.unwrap_or_else(|_| tempfile::tempdir().expect("temp dir"))
}

pub fn utf8(dir: &tempfile::TempDir) -> Utf8PathBuf {
    Utf8Path::from_path(dir.path())
        .expect("temp dirs are UTF-8")
        .to_owned()
}

/// Puts a crash state on disk under `base`: the index files on the real filesystem, the rest in
/// a new simulated filesystem (all of it durable) that is returned.
pub fn materialise(base: &Utf8Path, state: &CrashState) -> Arc<SimFs> {
    let root = base.join(".autosave");
    std::fs::create_dir_all(&root).expect("create the real store directory");
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(root.join(format!("index.sqlite{suffix}")));
    }
    // The index lives inside the store directory: if the crash lost the directory, it is gone.
    if state.image.contains_key(".autosave")
        && let Some(index) = &state.index
    {
        write_real(&root.join("index.sqlite"), &index.db);
        if let Some(wal) = &index.wal {
            write_real(&root.join("index.sqlite-wal"), wal);
        }
    }
    let sim = SimFs::from_image(base, &state.image, state.index.clone());
    sim.set_events(state.events);
    Arc::new(sim)
}

#[expect(
    clippy::disallowed_methods,
    reason = "the test plays the part of SQLite's files on the real filesystem"
)]
fn write_real(path: &Utf8Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write an index copy");
}
