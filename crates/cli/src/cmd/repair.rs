//! `autosave repair index`: rebuild the index from the blob files. `autosave repair blobs`:
//! forget damaged blobs, so that the next snapshot stores their bytes again.
//!
//! Snapshot records and manifests are always files, so the index can be rebuilt from `objects/`
//! alone (`Store::rebuild_index`, under the exclusive locks: never while the store is open
//! anywhere). Inline blobs the old index can still produce are carried over; `check` afterwards
//! names any snapshot that needed one that is gone.

use std::path::Path;

use anyhow::Result;
use autosave::store::{Damage, Options, Problem, Store};
use autosave::tree::{Manifest, STORE_DIR_NAME};
use serde::Serialize;

use super::Ctx;
use crate::cli::RepairWhat;
use crate::exit::Exit;
use crate::output;

#[derive(Serialize)]
struct Doc {
    snapshots: u64,
    lost_snapshots: u64,
    blob_files: u64,
    inline_blobs: u64,
    damaged_files: u64,
    damaged_snapshots: Vec<u64>,
}

pub(crate) fn run(ctx: &Ctx, what: &RepairWhat) -> Result<Exit> {
    match what {
        RepairWhat::Index => index(ctx),
        RepairWhat::Blobs { read_data } => blobs(ctx, *read_data),
    }
}

#[derive(Serialize)]
struct BlobsDoc {
    read_data: bool,
    blobs_checked: u64,
    bytes_read: u64,
    /// Damaged blobs whose rows were forgotten, by digest.
    forgotten: Vec<String>,
    /// Blob files written again with the right object kind in their header (repaired).
    rewritten: Vec<String>,
    /// Damaged blobs without an index row or an intact file (forgotten before, or lost with the
    /// index): the next snapshot that has their bytes stores them again.
    not_in_index: Vec<String>,
    /// Intact files without an index row: `repair index` indexes them again.
    file_not_in_index: Vec<String>,
    /// Damaged blobs left as they are: snapshot records and unreadable files.
    kept: Vec<String>,
    /// Snapshots that still need a damaged blob, ascending.
    damaged_snapshots: Vec<u64>,
    /// Whether a new snapshot can mend some of them (by storing a blob's bytes again).
    mendable: bool,
    /// Commands to run next, in order.
    next: Vec<String>,
}

fn blobs(ctx: &Ctx, read_data: bool) -> Result<Exit> {
    let store = ctx.open()?;
    let what = if read_data { "reading" } else { "checking" };
    let bar = ctx.out.bar(what, "blobs");
    let repair = store
        .forget_damaged_blobs(read_data, &bar.progress())
        .map_err(|e| match e {
            autosave::store::Error::Busy { .. } => anyhow::Error::new(e).context(
                "another program is using the store right now (a snapshot, restore, check or \
                 GC in progress): try again once it is done",
            ),
            e => e.into(),
        })?;
    drop(bar);
    let left = |d: &&Damage| {
        !repair.forgotten.contains(&d.digest) && !repair.rewritten.contains(&d.digest)
    };
    let damage = |wanted: fn(&Problem) -> bool| -> Vec<&Damage> {
        repair
            .report
            .damaged
            .iter()
            .filter(left)
            .filter(|d| wanted(&d.problem))
            .collect()
    };
    let not_in_index = damage(|p| *p == Problem::NotInIndex);
    let file_not_in_index = damage(|p| *p == Problem::FileNotInIndex);
    let kept = damage(|p| !matches!(p, Problem::NotInIndex | Problem::FileNotInIndex));
    let mut damaged: Vec<u64> = repair
        .report
        .damaged
        .iter()
        .filter(|d| !repair.rewritten.contains(&d.digest))
        .flat_map(|d| d.snapshots.iter().map(|id| id.0))
        .collect();
    damaged.sort_unstable();
    damaged.dedup();
    let store_flag = ctx.store_flag();
    let mut next = Vec::new();
    if !file_not_in_index.is_empty() {
        next.push(format!("autosave {store_flag}repair index"));
    }
    // Blobs without a row are stored again by the next snapshot that has their bytes, as
    // those just forgotten are.
    let mendable = !repair.forgotten.is_empty() || !not_in_index.is_empty();
    if mendable {
        if let Some(dir) = snapshot_dir(ctx, &store)? {
            next.push(format!("autosave {store_flag}snapshot {dir}"));
        }
        // What only reading finds (a corrupt blob kept) only a reading check sees again.
        let check = if read_data {
            "check --read-data"
        } else {
            "check"
        };
        next.push(format!("autosave {store_flag}{check}"));
    } else if !damaged.is_empty()
        && file_not_in_index.is_empty()
        && !kept
            .iter()
            .any(|d| matches!(d.problem, Problem::Unreadable { .. }))
    {
        // (A file that could not be read may be intact: nothing is forgotten until it can be.)
        let ids: Vec<String> = damaged.iter().map(u64::to_string).collect();
        next.push(format!("autosave {store_flag}forget {}", ids.join(" ")));
        next.push(format!("autosave {store_flag}gc"));
    }
    let digests = |list: &[&Damage]| list.iter().map(|d| d.digest.to_string()).collect();
    let doc = BlobsDoc {
        read_data,
        blobs_checked: repair.report.blobs_checked,
        bytes_read: repair.report.bytes_read,
        forgotten: repair.forgotten.iter().map(ToString::to_string).collect(),
        rewritten: repair.rewritten.iter().map(ToString::to_string).collect(),
        not_in_index: digests(&not_in_index),
        file_not_in_index: digests(&file_not_in_index),
        kept: digests(&kept),
        damaged_snapshots: damaged,
        mendable,
        next,
    };
    ctx.out.report("repair", &doc, blobs_text)?;
    Ok(if doc.damaged_snapshots.is_empty() {
        Exit::Ok
    } else {
        Exit::Damaged
    })
}

/// The directory to snapshot again, as a shell word: `.` for the default store
/// (`./.autosave`); with `--store`, the newest snapshot's label when it names a directory (a
/// directory snapshot's label is its path unless one was given), else none.
fn snapshot_dir(ctx: &Ctx, store: &autosave::store::Store) -> Result<Option<String>> {
    if ctx.store.is_none() {
        return Ok(Some(".".to_owned()));
    }
    Ok(store
        .latest()?
        .map(|s| s.label)
        .filter(|label| Path::new(label).is_absolute() && Path::new(label).is_dir())
        .map(|label| super::shell_word(&label)))
}

fn blobs_text(d: &BlobsDoc) -> String {
    let blobs = |n: usize| output::count(n as u64, "damaged blob", "damaged blobs");
    let mut parts = Vec::new();
    if !d.rewritten.is_empty() {
        parts.push(format!(
            "wrote {} again with the right object kind",
            blobs(d.rewritten.len())
        ));
    }
    if d.damaged_snapshots.is_empty() {
        parts.push(format!(
            "checked {}: no damage left",
            output::count(d.blobs_checked, "blob", "blobs")
        ));
        return format!("{}\n", parts.join("; "));
    }
    parts.push(format!("forgot {}", blobs(d.forgotten.len())));
    if !d.not_in_index.is_empty() {
        parts.push(format!(
            "{} had no index row already",
            blobs(d.not_in_index.len())
        ));
    }
    if !d.file_not_in_index.is_empty() {
        parts.push(format!(
            "{} intact but not in the index",
            output::count(d.file_not_in_index.len() as u64, "file is", "files are")
        ));
    }
    if !d.kept.is_empty() {
        parts.push(format!(
            "kept {} that no snapshot stores again (snapshot records, unreadable files)",
            blobs(d.kept.len())
        ));
    }
    let ids: Vec<String> = d.damaged_snapshots.iter().map(u64::to_string).collect();
    let mut out = parts.join("; ");
    out.push_str(&format!("\nsnapshots that need them: {}\n", ids.join(", ")));
    if d.mendable {
        out.push_str(
            "a snapshot of files that still hold those blobs' bytes stores them again, \
             and mends every snapshot that needs them; forget those that `check` still finds \
             damaged after it\n",
        );
    }
    for (i, command) in d.next.iter().enumerate() {
        let lead = if i == 0 { "next:" } else { "     " };
        out.push_str(&format!("{lead} {command}\n"));
    }
    out
}

fn index(ctx: &Ctx) -> Result<Exit> {
    let path = ctx.store_path(Path::new(STORE_DIR_NAME))?;
    let spinner = ctx.out.spinner("rebuilding the index");
    let (store, r) = Store::rebuild_index(&path, Options::default(), &Manifest::refs_of).map_err(
        |e| match e {
            autosave::store::Error::Busy { .. } => anyhow::Error::new(e).context(
                "the store is open in another program (an application's autosave session, \
                 `autosave watch`, another command): close it, then repair the index",
            ),
            e => e.into(),
        },
    )?;
    let verify = store.verify(false)?;
    drop(spinner);
    let doc = Doc {
        snapshots: r.snapshots,
        lost_snapshots: r.lost_snapshots,
        blob_files: r.blob_files,
        inline_blobs: r.inline_blobs,
        damaged_files: r.damaged_files,
        damaged_snapshots: verify.damaged_snapshots.iter().map(|id| id.0).collect(),
    };
    ctx.out.report("repair", &doc, text)?;
    // A damaged record file hides the snapshot it was: it counts as damage too.
    let damaged =
        doc.lost_snapshots > 0 || doc.damaged_files > 0 || !doc.damaged_snapshots.is_empty();
    Ok(if damaged { Exit::Damaged } else { Exit::Ok })
}

fn text(d: &Doc) -> String {
    let mut out = format!(
        "rebuilt the index: {} recovered, {} lost; {} blob files, {} inline blobs carried over, {} damaged files\n",
        output::count(d.snapshots, "snapshot", "snapshots"),
        d.lost_snapshots,
        d.blob_files,
        d.inline_blobs,
        d.damaged_files,
    );
    if !d.damaged_snapshots.is_empty() {
        let ids: Vec<String> = d.damaged_snapshots.iter().map(u64::to_string).collect();
        out.push_str(&format!(
            "snapshots missing data: {}; run `autosave check --read-data` for details, `autosave forget {}` to drop them\n",
            ids.join(", "),
            ids.join(" ")
        ));
    }
    out
}
