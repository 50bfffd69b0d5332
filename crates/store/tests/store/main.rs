//! Integration tests of the store, one module per area.

#![expect(
    clippy::disallowed_methods,
    reason = "tests damage store files on purpose"
)]
#![expect(
    clippy::unwrap_used,
    reason = "in a test helper a failed unwrap is a failed test"
)]

mod concurrency;
mod dedup;
mod dir_fsync;
mod errors;
mod gc;
mod model;
mod planes;
mod progress;
mod rebuild;
mod reopen;
mod roundtrip;
mod verify;

use autosave_store::{Digest, NewSnapshot, Options, SnapshotId, SnapshotKind, StdFs, Store};
use camino::{Utf8Path, Utf8PathBuf};

/// What a test changes of the real filesystem: a hook that returns `None`, or is left out,
/// leaves the call to [`autosave_store::StdFs`].
pub(crate) trait Hooks: Send + Sync + std::fmt::Debug {
    fn sync_dir(&self, _path: &Utf8Path) -> Option<std::io::Result<()>> {
        None
    }
    fn remove_file(&self, _path: &Utf8Path) -> Option<std::io::Result<()>> {
        None
    }
    fn before_commit(&self, _needs: &[Utf8PathBuf]) -> std::io::Result<()> {
        Ok(())
    }
    fn after_commit(&self, _index: &Utf8Path, _durable: bool) {}
}

/// The real filesystem with a test's [`Hooks`] (which it derefs to).
#[derive(Debug, Default)]
pub(crate) struct Hooked<H>(pub(crate) H);

impl<H> std::ops::Deref for Hooked<H> {
    type Target = H;
    fn deref(&self) -> &H {
        &self.0
    }
}

impl<H: Hooks> autosave_store::Vfs for Hooked<H> {
    fn create_dir(&self, path: &Utf8Path) -> std::io::Result<()> {
        StdFs.create_dir(path)
    }
    fn write_new(&self, path: &Utf8Path, parts: &[&[u8]]) -> std::io::Result<()> {
        StdFs.write_new(path, parts)
    }
    fn sync_file(&self, path: &Utf8Path) -> std::io::Result<()> {
        StdFs.sync_file(path)
    }
    fn sync_dir(&self, path: &Utf8Path) -> std::io::Result<()> {
        self.0
            .sync_dir(path)
            .unwrap_or_else(|| StdFs.sync_dir(path))
    }
    fn link(&self, from: &Utf8Path, to: &Utf8Path) -> std::io::Result<()> {
        StdFs.link(from, to)
    }
    fn rename(&self, from: &Utf8Path, to: &Utf8Path) -> std::io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Utf8Path) -> std::io::Result<()> {
        self.0
            .remove_file(path)
            .unwrap_or_else(|| StdFs.remove_file(path))
    }
    fn read(&self, path: &Utf8Path) -> std::io::Result<Vec<u8>> {
        StdFs.read(path)
    }
    fn file_len(&self, path: &Utf8Path) -> std::io::Result<Option<u64>> {
        StdFs.file_len(path)
    }
    fn list_dir(&self, path: &Utf8Path) -> std::io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn is_dir(&self, path: &Utf8Path) -> bool {
        StdFs.is_dir(path)
    }
    fn before_commit(&self, needs: &[Utf8PathBuf]) -> std::io::Result<()> {
        self.0.before_commit(needs)
    }
    fn after_commit(&self, index: &Utf8Path, durable: bool) {
        self.0.after_commit(index, durable);
    }
}

/// A fresh store in a temp directory; the directory lives as long as the returned guard.
pub(crate) fn new_store() -> (tempfile::TempDir, Store) {
    new_store_with(Options::default())
}

pub(crate) fn new_store_with(options: Options) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = store_path(&dir);
    let store = Store::open_with(
        &path,
        Options {
            create: true,
            ..options
        },
    )
    .expect("create store");
    (dir, store)
}

pub(crate) fn store_path(dir: &tempfile::TempDir) -> Utf8PathBuf {
    Utf8Path::from_path(dir.path())
        .expect("temp dirs are UTF-8")
        .join(".autosave")
}

/// Commits one snapshot that references `contents`; returns its id and the contents' digests.
pub(crate) fn commit(store: &Store, contents: &[&[u8]]) -> (SnapshotId, Vec<Digest>) {
    let batch = store.batch().expect("batch");
    let digests: Vec<Digest> = contents
        .iter()
        .map(|c| batch.put(c).expect("put").digest)
        .collect();
    let manifest = batch
        .put_file(format!("manifest of {} blobs {:?}", digests.len(), digests).as_bytes())
        .expect("put manifest")
        .digest;
    let mut snap = NewSnapshot::new(SnapshotKind::Autosave, manifest);
    snap.refs = digests.clone();
    let id = batch.commit(snap).expect("commit").id;
    (id, digests)
}

/// Deterministic incompressible bytes.
pub(crate) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Deterministic bytes that zstd shrinks several times (text-like, repetitive).
pub(crate) fn compressible_bytes(len: usize, seed: u64) -> Vec<u8> {
    let words = ["alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta "];
    let noise = random_bytes(len / 5 + 1, seed);
    let mut out = Vec::with_capacity(len + 8);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(words[usize::from(noise[i % noise.len()]) % words.len()].as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// Every file under `dir`, recursively, as paths.
pub(crate) fn files_under(dir: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = Utf8PathBuf::try_from(entry.expect("dir entry").path()).expect("UTF-8 path");
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Flips one bit of the byte at `at` of the file at `path` (a damage of the same size, which
/// only reading the data finds).
pub(crate) fn flip_byte(path: &Utf8Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

/// The path of a blob's file.
pub(crate) fn blob_file(store: &Store, digest: &Digest) -> Utf8PathBuf {
    let hex = digest.to_string();
    store.root().join("objects").join(&hex[..2]).join(hex)
}
