//! The oracle: after a mutation, open the store, read every snapshot, entry and blob, verify,
//! ask the session what to recover, and (for index damage) rebuild the index. Any read that
//! succeeds must return the reference's exact bytes; any failure must be a typed error; every
//! blob the mutation damaged must be named by `verify`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use autosave::store::{Digest, Store};
use autosave::tree::{Manifest, read_content, snapshot_manifest};
use autosave::{Options, Session};
use camino::Utf8Path;

use crate::mutation::{Applied, Mutation};
use crate::reference::{FileKind, Reference, store_options};

/// What one mutation led to.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Reads that returned bytes other than the reference's: must stay empty.
    pub(crate) wrong: Vec<String>,
    /// Blobs the mutation damaged (or that no longer read back) and that a listed snapshot needs.
    pub(crate) damaged: usize,
    /// Of those, named by `verify`.
    pub(crate) reported: usize,
    /// Of those, not named because `verify` itself failed with a typed error (index damage).
    pub(crate) reported_by_failure: usize,
    /// Damaged blobs `verify` did not name, and other broken promises.
    pub(crate) misses: Vec<String>,
    /// The store did not open: the error.
    pub(crate) open_error: Option<String>,
    /// Reference snapshots no longer listed, with no error.
    pub(crate) vanished: usize,
    /// Of those, the ones whose record `verify` named as unindexed (so `check` says to run
    /// `repair index`).
    pub(crate) vanished_named: usize,
    /// Of those, the ones a writable session listed again after opening (adoption), each read
    /// back exactly.
    pub(crate) vanished_adopted: usize,
    /// Reads that failed with a typed error.
    pub(crate) typed_errors: usize,
    /// Session-level recovery when the newest autosave was damaged.
    pub(crate) recovery: Option<RecoveryOutcome>,
    /// Index rebuild after index damage.
    pub(crate) repair: Option<RepairOutcome>,
}

/// Recovery when the newest autosave cannot be read back intact.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RecoveryOutcome {
    /// `recovery()` said why (a problem, or a typed error).
    pub(crate) said_why: bool,
    /// The autosave it offered restored exactly (an intact older one).
    pub(crate) intact_found: bool,
    /// There was an intact older autosave to find.
    pub(crate) intact_exists: bool,
}

/// An index rebuild after damage to the index files.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RepairOutcome {
    pub(crate) rebuilt: bool,
    pub(crate) snapshots_expected: usize,
    pub(crate) snapshots_recovered: usize,
    /// Entries whose blobs are all files (intact): must read back exactly.
    pub(crate) file_entries: usize,
    pub(crate) file_entries_exact: usize,
    /// Entries that needed an inline blob: exact, or reported by verify when lost.
    pub(crate) inline_entries: usize,
    pub(crate) inline_entries_exact_or_reported: usize,
}

/// Runs the oracle for `m` on a copy at `root` (a store directory inside `scratch`).
pub(crate) fn check(r: &Reference, m: &Mutation, applied: &Applied, root: &Path) -> Outcome {
    crate::reference::write_copy(r, &applied.files, root);
    for dir in &applied.removed_dirs {
        std::fs::remove_dir_all(root.join(dir)).unwrap();
    }
    let root = Utf8Path::from_path(root).expect("scratch paths are UTF-8");
    let kind = m.kind(r);
    let mut out = Outcome::default();
    let options = Options {
        store_dir: Some(root.to_owned()),
        read_only: true,
        store: store_options(),
        ..Options::default()
    };
    match Session::open(root, options) {
        Ok(session) => read_everything(r, kind, damaged_files(r, applied), &session, &mut out),
        Err(e) => {
            out.open_error = Some(e.to_string());
            if kind == FileKind::Blob {
                out.misses
                    .push(format!("a store with damaged blob files did not open: {e}"));
            }
        }
    }
    if out.vanished > 0 && out.open_error.is_none() {
        adopt(r, root, &mut out);
    }
    if kind.holds_index() {
        out.repair = Some(repair(r, root, &mut out));
    }
    out
}

/// Opens a writable session on the damaged copy, as the host would next: the snapshots the
/// index lost that it brings back must read back exactly. Index files only change rows, so the
/// repair oracle that follows sees the same files.
fn adopt(r: &Reference, root: &Utf8Path, out: &mut Outcome) {
    let options = Options {
        store_dir: Some(root.to_owned()),
        store: store_options(),
        ..Options::default()
    };
    let Ok(session) = Session::open(root, options) else {
        return;
    };
    let store = session.store();
    let by_manifest = by_manifest(r);
    let Ok(listed) = store.snapshots() else {
        return;
    };
    for info in listed.iter().filter(|s| session.adopted().contains(&s.id)) {
        let reference = by_manifest.get(&info.manifest).copied();
        let wrong = out.wrong.len();
        read_snapshot(r, store, info.id, reference, out);
        if out.wrong.len() == wrong && reference.is_some() {
            out.vanished_adopted += 1;
        }
    }
}

/// Each reference snapshot's index, by its manifest's digest.
fn by_manifest(r: &Reference) -> BTreeMap<Digest, usize> {
    r.snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.manifest_digest, i))
        .collect()
}

/// Blobs whose file the mutation changed or removed, unless the changed file still has the same
/// header and a zstd payload that decodes to the same content (a flip in bits zstd ignores).
fn damaged_files(r: &Reference, applied: &Applied) -> BTreeSet<Digest> {
    r.files
        .iter()
        .zip(&applied.files)
        .filter(|(f, now)| now.as_deref() != Some(&f.bytes[..]))
        .filter(|(f, now)| !still_decodes(r, f, now.as_deref()))
        .filter_map(|(f, _)| f.digest)
        .collect()
}

fn still_decodes(r: &Reference, f: &crate::reference::RefFile, now: Option<&[u8]>) -> bool {
    let (Some(digest), Some(now)) = (f.digest, now) else {
        return false;
    };
    const HEADER: usize = 16;
    let zstd_file = f.bytes.get(5) == Some(&1);
    zstd_file
        && now.len() > HEADER
        && now[..HEADER] == f.bytes[..HEADER]
        && zstd::decode_all(&now[HEADER..]).is_ok_and(|bytes| bytes == r.blobs[&digest])
}

fn read_everything(
    r: &Reference,
    kind: FileKind,
    damaged: BTreeSet<Digest>,
    session: &Session,
    out: &mut Outcome,
) {
    let store = session.store();
    let listed = match store.snapshots() {
        Ok(listed) => listed,
        Err(_) => {
            out.typed_errors += 1;
            Vec::new()
        }
    };
    let by_manifest = by_manifest(r);
    let present: BTreeSet<usize> = listed
        .iter()
        .filter_map(|s| by_manifest.get(&s.manifest).copied())
        .collect();
    out.vanished = r.snapshots.len() - present.len();
    if out.vanished > 0 && !kind.holds_index() {
        out.misses
            .push(format!("{} acknowledged snapshots vanished", out.vanished));
    }
    for info in &listed {
        read_snapshot(
            r,
            store,
            info.id,
            by_manifest.get(&info.manifest).copied(),
            out,
        );
    }
    let unavailable = read_blobs(r, store, out);
    let needed: BTreeSet<Digest> = present
        .iter()
        .flat_map(|&i| r.snapshots[i].blobs.iter().copied())
        .collect();
    let must_report: BTreeSet<Digest> = damaged
        .union(&unavailable)
        .filter(|d| needed.contains(d))
        .copied()
        .collect();
    let vanished: BTreeSet<Digest> = (0..r.snapshots.len())
        .filter(|i| !present.contains(i))
        .map(|i| r.snapshots[i].record)
        .collect();
    verify(store, kind, &must_report, &vanished, out);
    out.recovery = recovery(r, session, &present, &unavailable, out);
}

/// Reads one listed snapshot's manifest and every entry; `reference` is the snapshot with the
/// same manifest digest, if any.
fn read_snapshot(
    r: &Reference,
    store: &Store,
    id: autosave::store::SnapshotId,
    reference: Option<usize>,
    out: &mut Outcome,
) {
    let manifest = match snapshot_manifest(store, id) {
        Ok(m) => m,
        Err(_) => {
            out.typed_errors += 1;
            return;
        }
    };
    let Some(expected) = reference.map(|i| &r.snapshots[i]) else {
        out.wrong.push(format!(
            "snapshot {id} read back a manifest the reference never wrote"
        ));
        return;
    };
    if manifest != expected.manifest {
        out.wrong.push(format!("snapshot {id}: wrong manifest"));
        return;
    }
    read_entries(store, &manifest, &expected.contents, out);
}

fn read_entries(
    store: &Store,
    manifest: &Manifest,
    contents: &BTreeMap<autosave::tree::EntryPath, Vec<u8>>,
    out: &mut Outcome,
) {
    for entry in manifest.entries() {
        match read_content(store, &entry.content) {
            Ok(bytes) if bytes == contents[&entry.path] => {}
            Ok(_) => out.wrong.push(format!("entry {}: wrong bytes", entry.path)),
            Err(_) => out.typed_errors += 1,
        }
    }
}

/// Reads every reference blob directly; returns those that did not read back.
fn read_blobs(r: &Reference, store: &Store, out: &mut Outcome) -> BTreeSet<Digest> {
    let mut unavailable = BTreeSet::new();
    for (digest, expected) in &r.blobs {
        match store.get(digest) {
            Ok(Some(bytes)) if &bytes == expected => {}
            Ok(Some(_)) => out.wrong.push(format!("blob {digest}: wrong bytes")),
            Ok(None) => {
                unavailable.insert(*digest);
            }
            Err(_) => {
                out.typed_errors += 1;
                unavailable.insert(*digest);
            }
        }
    }
    unavailable
}

fn verify(
    store: &Store,
    kind: FileKind,
    must_report: &BTreeSet<Digest>,
    vanished: &BTreeSet<Digest>,
    out: &mut Outcome,
) {
    out.damaged = must_report.len();
    match store.verify(true) {
        Ok(report) => {
            out.vanished_named = report
                .unindexed_records
                .iter()
                .filter(|d| vanished.contains(d))
                .count();
            let named: BTreeSet<Digest> = report.damaged.iter().map(|d| d.digest).collect();
            for digest in must_report {
                if named.contains(digest) {
                    out.reported += 1;
                } else {
                    out.misses
                        .push(format!("verify did not name damaged blob {digest}"));
                }
            }
        }
        Err(_) if kind.holds_index() => {
            out.typed_errors += 1;
            out.reported_by_failure = must_report.len();
        }
        Err(e) => out.misses.push(format!("verify failed: {e}")),
    }
}

/// When the newest autosave is listed but damaged: does the session say why, and does it offer
/// an older intact autosave that restores exactly?
fn recovery(
    r: &Reference,
    session: &Session,
    present: &BTreeSet<usize>,
    unavailable: &BTreeSet<Digest>,
    out: &mut Outcome,
) -> Option<RecoveryOutcome> {
    let newest = r.snapshots.len() - 1;
    let intact = |i: usize| {
        present.contains(&i)
            && r.snapshots[i]
                .blobs
                .iter()
                .all(|d| !unavailable.contains(d))
    };
    if !present.contains(&newest) || intact(newest) {
        return None;
    }
    let mut outcome = RecoveryOutcome {
        intact_exists: (1..newest).any(intact),
        ..RecoveryOutcome::default()
    };
    let offered = match session.recovery() {
        Ok(Some(offer)) => offer,
        Ok(None) => {
            out.misses.push(
                "recovery saw nothing to recover though the newest autosave is damaged".into(),
            );
            return Some(outcome);
        }
        Err(_) => {
            outcome.said_why = true;
            return Some(outcome);
        }
    };
    outcome.said_why = offered.problem.is_some();
    // The session reads every candidate back and offers the newest intact autosave itself.
    if let Ok(restored) = session.restore(offered.snapshot.id) {
        outcome.intact_found = check_restored(r, &restored, out);
    }
    // Oracle 4: the damage is always explained, and an intact older autosave is found.
    if !outcome.said_why {
        out.misses
            .push("recovery offered a damaged newest autosave without saying why".into());
    }
    if outcome.intact_exists && !outcome.intact_found {
        out.misses
            .push("recovery did not offer an intact autosave though one existed".into());
    }
    Some(outcome)
}

/// Whether a restored tree is exactly a reference snapshot; records wrong bytes otherwise.
fn check_restored(r: &Reference, restored: &autosave::Restored, out: &mut Outcome) -> bool {
    let Some(expected) = r.snapshots.iter().find(|s| s.manifest == restored.manifest) else {
        out.wrong
            .push("restore returned a tree the reference never wrote".into());
        return false;
    };
    for entry in &restored.entries {
        if entry.content != expected.contents[&entry.path] {
            out.wrong
                .push(format!("restore of {}: wrong bytes", entry.path));
            return false;
        }
    }
    true
}

/// Rebuilds the index of the damaged copy and reads every reference snapshot back.
fn repair(r: &Reference, root: &Utf8Path, out: &mut Outcome) -> RepairOutcome {
    let mut outcome = RepairOutcome {
        snapshots_expected: r.snapshots.len(),
        ..RepairOutcome::default()
    };
    let refs_of = |bytes: &[u8]| Manifest::decode(bytes).ok().map(|m| m.blobs());
    let store = match Store::rebuild_index(root, store_options(), &refs_of) {
        Ok((store, _)) => store,
        Err(e) => {
            out.misses
                .push(format!("rebuild after index damage failed: {e}"));
            return outcome;
        }
    };
    outcome.rebuilt = true;
    let reported: BTreeSet<Digest> = match store.verify(true) {
        Ok(v) => v.damaged.iter().map(|d| d.digest).collect(),
        Err(e) => {
            out.misses.push(format!("verify after rebuild failed: {e}"));
            BTreeSet::new()
        }
    };
    let listed = store.snapshots().unwrap_or_default();
    for expected in &r.snapshots {
        let Some(info) = listed.iter().find(|s| {
            s.manifest == expected.manifest_digest && s.created_ns == expected.created_ns
        }) else {
            out.misses
                .push(format!("rebuild lost snapshot {}", expected.id));
            continue;
        };
        outcome.snapshots_recovered += 1;
        let Ok(manifest) = snapshot_manifest(&store, info.id) else {
            out.misses
                .push(format!("rebuilt snapshot {} has no manifest", info.id));
            continue;
        };
        for entry in manifest.entries() {
            let blobs: Vec<Digest> = entry.content.digests().collect();
            let inline = blobs.iter().any(|d| r.inline.contains(d));
            let result = read_content(&store, &entry.content);
            let exact = result
                .as_ref()
                .is_ok_and(|b| *b == expected.contents[&entry.path]);
            if let Ok(bytes) = &result
                && !exact
            {
                out.wrong.push(format!(
                    "after rebuild, entry {}: wrong bytes ({} bytes)",
                    entry.path,
                    bytes.len()
                ));
            }
            if inline {
                outcome.inline_entries += 1;
                let named = blobs
                    .iter()
                    .all(|d| reported.contains(d) || store.get(d).is_ok_and(|b| b.is_some()));
                if exact || (result.is_err() && named) {
                    outcome.inline_entries_exact_or_reported += 1;
                } else {
                    out.misses.push(format!(
                        "after rebuild, entry {} lost and not reported",
                        entry.path
                    ));
                }
            } else {
                outcome.file_entries += 1;
                if exact {
                    outcome.file_entries_exact += 1;
                } else {
                    out.misses.push(format!(
                        "after rebuild, file-backed entry {} did not read back",
                        entry.path
                    ));
                }
            }
        }
    }
    outcome
}
