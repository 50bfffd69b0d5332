//! The oracle, run on every crash state:
//!
//! 1. every snapshot acknowledged before the crash (and not being deleted by retention) is there
//!    and reads back byte for byte;
//! 2. every snapshot there is exactly one committed tree: its manifest is one the workload
//!    committed, its references are that tree's blobs, and it reads back as that tree;
//! 3. a read returns the exact bytes or a typed error, never other bytes;
//! 4. `verify(true)` names exactly the snapshots that do not read back, so recovery can pick the
//!    newest intact one and say why;
//! 5. after GC no blob of a remaining snapshot is missing;
//! 6. after recovery (an autosave of every content ever stored, which dedupes against whatever
//!    the crash left) and GC, `verify(true)` is clean and no temp or orphan file remains.

use std::collections::{BTreeMap, BTreeSet};

use autosave_store::{Digest, Error, Reader, SnapshotId, SnapshotInfo, Store};
use camino::Utf8Path;

use super::crash::CrashState;
use super::fs::SimFs;
use super::workload::{self, Model, Tree};

/// Checks one crash state, with `base` a real scratch directory; returns the violations.
pub fn check(base: &Utf8Path, state: &CrashState, model: &Model) -> Vec<String> {
    let sim = workload::materialise(base, state);
    let mut out = Vec::new();
    let store = match Store::open_with(base.join(".autosave"), workload::options(sim.clone())) {
        Ok(store) => store,
        Err(e) => {
            out.push(format!("(1) the store does not open: {e}"));
            return out;
        }
    };
    if let Err(e) = run(&store, &sim, state, model, &mut out) {
        out.push(format!("an operation failed: {e}"));
    }
    for v in sim.barrier_violations() {
        out.push(format!("(1) commit barrier during recovery: {v}"));
    }
    out
}

fn run(
    store: &Store,
    sim: &SimFs,
    state: &CrashState,
    model: &Model,
    out: &mut Vec<String>,
) -> autosave_store::Result<()> {
    let required = model.required(state.events);
    let damaged = check_snapshots(store, model, &required, out)?;
    check_verify(store, &damaged, out)?;
    // Recovery: the next autosave holds every content ever stored.
    let mut after = model.at(state.events);
    let everything = after.everything();
    match workload::autosave(store, sim, &mut after, &everything) {
        Ok(_) => {}
        Err(e) => out.push(format!("(6) the autosave after recovery fails: {e}")),
    }
    let required = after.required(after.events.len());
    if let Err(e) = store.gc() {
        out.push(format!("(5) gc after recovery fails: {e}"));
    }
    let damaged = check_snapshots(store, &after, &required, out)?;
    if !damaged.is_empty() {
        out.push(format!("(5) snapshots damaged after gc: {damaged:?}"));
    }
    let report = store.verify(true)?;
    if !report.is_clean() {
        out.push(format!("(6) verify after gc: {:?}", report.damaged));
    }
    check_leftovers(store, sim, out)
}

/// Checks (1)–(3); returns the snapshots present that do not read back.
pub fn check_snapshots(
    store: &Store,
    model: &Model,
    required: &[(SnapshotId, Digest)],
    out: &mut Vec<String>,
) -> autosave_store::Result<BTreeSet<SnapshotId>> {
    let present: BTreeMap<SnapshotId, SnapshotInfo> =
        store.snapshots()?.into_iter().map(|s| (s.id, s)).collect();
    for (id, manifest) in required {
        match present.get(id) {
            Some(s) if s.manifest == *manifest => {}
            Some(_) => out.push(format!("(2) snapshot {id} has another manifest")),
            None => out.push(format!("(1) acknowledged snapshot {id} is lost")),
        }
    }
    let mut damaged = BTreeSet::new();
    let reader = store.reader()?;
    for (id, info) in &present {
        let Some(tree) = model.trees.get(&info.manifest) else {
            out.push(format!("(2) snapshot {id} is no committed tree"));
            continue;
        };
        if let Err(why) = read_back(store, &reader, info, tree, out)? {
            out.push(format!("(1) snapshot {id} does not read back: {why}"));
            damaged.insert(*id);
        }
    }
    Ok(damaged)
}

/// Reads a snapshot back; the inner error says why it is not intact.
fn read_back(
    store: &Store,
    reader: &Reader<'_>,
    info: &SnapshotInfo,
    tree: &Tree,
    out: &mut Vec<String>,
) -> autosave_store::Result<Result<(), String>> {
    let mut expected: BTreeMap<Digest, &[u8]> = tree
        .values()
        .map(|b| (store.digest_of(b), b.as_slice()))
        .collect();
    let refs: Vec<Digest> = expected.keys().copied().collect();
    if store.snapshot_refs(info.id)? != refs {
        out.push(format!("(2) snapshot {} has other references", info.id));
    }
    let manifest = workload::manifest(store, tree);
    expected.insert(info.manifest, &manifest);
    for (digest, expected) in expected {
        match reader.get(&digest) {
            Ok(Some(bytes)) if bytes == expected => {}
            Ok(Some(_)) => {
                out.push(format!("(3) blob {digest} read back other bytes"));
                return Ok(Err(format!("blob {digest} has other bytes")));
            }
            Ok(None) => return Ok(Err(format!("blob {digest} is not stored"))),
            Err(e @ (Error::Corrupt { .. } | Error::Missing { .. } | Error::Io { .. })) => {
                return Ok(Err(e.to_string()));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(()))
}

/// (4): verify names exactly the snapshots that do not read back.
fn check_verify(
    store: &Store,
    damaged: &BTreeSet<SnapshotId>,
    out: &mut Vec<String>,
) -> autosave_store::Result<()> {
    let report = store.verify(true)?;
    let named: BTreeSet<SnapshotId> = report.damaged_snapshots.iter().copied().collect();
    if &named != damaged {
        out.push(format!(
            "(4) verify names {named:?}, but {damaged:?} do not read back"
        ));
    }
    Ok(())
}

/// (6): no temp file anywhere, and every file under `objects/` is a blob with an index row.
pub fn check_leftovers(
    store: &Store,
    sim: &SimFs,
    out: &mut Vec<String>,
) -> autosave_store::Result<()> {
    for path in sim.visible_files() {
        let name = path.rsplit('/').next().unwrap_or(&path);
        if name.starts_with(".tmp-") {
            out.push(format!("(6) temp file {path} remains"));
        } else if path.starts_with(".autosave/tmp/") {
            out.push(format!("(6) scratch file {path} remains"));
        } else if path.starts_with(".autosave/objects/") {
            let known = match name.parse::<Digest>() {
                Ok(d) => store.contains(&d)?,
                Err(_) => false,
            };
            if !known {
                out.push(format!("(6) orphan file {path} remains"));
            }
        }
    }
    Ok(())
}
