//! Suite 8: the index is deleted or replaced by garbage (with or without a damaged blob file),
//! `Store::rebuild_index` rebuilds it from the objects and manifest blobs, and every snapshot
//! whose blobs are intact reads back byte for byte; the others are named by `verify`.

use std::collections::BTreeSet;
use std::path::Path;

use autosave::store::{Digest, Store};
use autosave::tree::{EntryPath, Manifest, read_content, snapshot_manifest};
use camino::Utf8Path;

use crate::reference::{FileKind, Reference, store_options};

struct Scenario {
    name: &'static str,
    /// Replace `index.sqlite` by this (and delete its WAL and shared memory); `None`: keep it.
    index: Option<Option<Vec<u8>>>,
    /// Flip a bit in the blob file of this entry's first version.
    damage: Option<EntryPath>,
}

/// Runs every scenario; whether all passed.
pub(crate) fn run(r: &Reference, scratch: &Path) -> bool {
    let scenarios = [
        Scenario {
            name: "index deleted",
            index: Some(None),
            damage: None,
        },
        Scenario {
            name: "index replaced by garbage",
            index: Some(Some(b"SQLite format 3\0 but not really".repeat(100))),
            damage: None,
        },
        Scenario {
            name: "index kept, one blob damaged",
            index: None,
            damage: Some(EntryPath::new(["arrays", "random"])),
        },
        Scenario {
            name: "index deleted, one blob damaged",
            index: Some(None),
            damage: Some(EntryPath::new(["arrays", "random"])),
        },
    ];
    let mut ok = true;
    for s in &scenarios {
        let dir = tempfile::tempdir_in(scratch).unwrap();
        let root = dir.path().join(".autosave");
        match scenario(r, s, &root) {
            Ok(summary) => println!("repair: {}: {summary}", s.name),
            Err(problem) => {
                println!("FAIL repair: {}: {problem}", s.name);
                ok = false;
            }
        }
    }
    ok
}

fn scenario(r: &Reference, s: &Scenario, root: &Path) -> Result<String, String> {
    let damaged = s.damage.as_ref().map(|path| r.blobs_of(0, path)[0]);
    let files: Vec<Option<Vec<u8>>> = r
        .files
        .iter()
        .map(|f| match (f.kind, &s.index) {
            (FileKind::Index, Some(replacement)) => replacement.clone(),
            (FileKind::Wal | FileKind::Shm, Some(_)) => None,
            _ if f.digest.is_some() && f.digest == damaged => {
                let mut bytes = f.bytes.clone();
                bytes[f.bytes.len() / 2] ^= 0x10;
                Some(bytes)
            }
            _ => Some(f.bytes.clone()),
        })
        .collect();
    crate::reference::write_copy(r, &files, root);
    let root = Utf8Path::from_path(root).unwrap();
    let refs_of = |bytes: &[u8]| Manifest::decode(bytes).ok().map(|m| m.blobs());
    let (store, report) = Store::rebuild_index(root, store_options(), &refs_of)
        .map_err(|e| format!("rebuild failed: {e}"))?;
    let mut lost: BTreeSet<Digest> = damaged.into_iter().collect();
    if s.index.is_some() {
        lost.extend(&r.inline);
    }
    let expected_damaged: BTreeSet<usize> = (0..r.snapshots.len())
        .filter(|&i| r.snapshots[i].blobs.iter().any(|d| lost.contains(d)))
        .collect();
    let verify = store
        .verify(true)
        .map_err(|e| format!("verify failed: {e}"))?;
    let listed = store.snapshots().map_err(|e| e.to_string())?;
    if listed.len() != r.snapshots.len() {
        return Err(format!(
            "{} snapshots recovered of {}",
            listed.len(),
            r.snapshots.len()
        ));
    }
    let mut exact = 0;
    for (i, (info, expected)) in listed.iter().zip(&r.snapshots).enumerate() {
        if info.manifest != expected.manifest_digest {
            return Err(format!("snapshot {} recovered out of order", info.id));
        }
        let named = verify.damaged_snapshots.contains(&info.id);
        if named != expected_damaged.contains(&i) {
            return Err(format!(
                "snapshot {}: verify names it damaged: {named}, expected the opposite",
                info.id
            ));
        }
        let manifest = snapshot_manifest(&store, info.id).map_err(|e| e.to_string())?;
        for entry in manifest.entries() {
            let needs_lost = entry.content.digests().any(|d| lost.contains(&d));
            match read_content(&store, &entry.content) {
                Ok(bytes) if bytes == expected.contents[&entry.path] => exact += 1,
                Ok(_) => {
                    return Err(format!(
                        "snapshot {} entry {}: wrong bytes",
                        info.id, entry.path
                    ));
                }
                Err(_) if needs_lost => {}
                Err(e) => {
                    return Err(format!(
                        "snapshot {} entry {} did not read back: {e}",
                        info.id, entry.path
                    ));
                }
            }
        }
    }
    Ok(format!(
        "{} snapshots recovered, {} damaged files left out, {} inline blobs carried over; {} entries read back byte for byte; verify names snapshots {:?} (expected {})",
        report.snapshots,
        report.damaged_files,
        report.inline_blobs,
        exact,
        verify
            .damaged_snapshots
            .iter()
            .map(|id| id.0)
            .collect::<Vec<_>>(),
        expected_damaged.len()
    ))
}

impl Reference {
    /// The blobs of `path`'s content in snapshot `i`.
    fn blobs_of(&self, i: usize, path: &EntryPath) -> Vec<Digest> {
        let entry = self.snapshots[i].manifest.get(path).unwrap();
        entry.content.digests().collect()
    }
}
