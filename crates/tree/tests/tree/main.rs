//! Integration tests of the tree crate, one module per area.

#![expect(
    clippy::unwrap_used,
    reason = "in a test helper a failed unwrap is a failed test"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests make and edit files directly"
)]

mod chunking;
mod diff;
mod dir;
mod manifest;
mod progress;
mod record;
mod restore;
mod write;

use autosave_store::{ChunkParams, Options, SnapshotKind, Store};
use autosave_tree::{ChangeCache, Node, SnapshotSpec, Written, write_snapshot};

/// Small chunking parameters so that tests exercise chunking with little data.
pub(crate) const SMALL_CHUNKS: ChunkParams = ChunkParams {
    threshold: 64 << 10,
    min: 4 << 10,
    avg: 16 << 10,
    max: 64 << 10,
};

pub(crate) fn new_store() -> (tempfile::TempDir, Store) {
    new_store_with(ChunkParams::default())
}

pub(crate) fn new_store_with(chunking: ChunkParams) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = camino::Utf8Path::from_path(dir.path())
        .unwrap()
        .join(".autosave");
    let options = Options {
        create: true,
        chunking,
        ..Options::default()
    };
    (dir, Store::open_with(path, options).unwrap())
}

pub(crate) fn autosave(store: &Store, cache: &mut ChangeCache, nodes: &[Node<'_>]) -> Written {
    write_snapshot(
        store,
        cache,
        nodes,
        &SnapshotSpec::new(SnapshotKind::Autosave),
    )
    .unwrap()
}

/// Deterministic incompressible bytes.
pub(crate) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// How many files are under `dir`, recursively.
pub(crate) fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => files_in(&e.path()),
                    _ => 1,
                })
                .sum()
        })
        .unwrap_or(0)
}
