//! `autosave repair index`: rebuild the index from the blob files.
//!
//! Snapshot records and manifests are always files, so the index can be rebuilt from `objects/`
//! alone (`Store::rebuild_index`, under the exclusive locks: never while the store is open
//! anywhere). Inline blobs the old index can still produce are carried over; `check` afterwards
//! names any snapshot that needed one that is gone.

use std::path::Path;

use anyhow::Result;
use autosave::store::{Options, Store};
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
    }
}

fn index(ctx: &Ctx) -> Result<Exit> {
    let path = ctx.store_path(Path::new(STORE_DIR_NAME))?;
    let spinner = ctx.out.spinner("rebuilding the index");
    let refs_of = |bytes: &[u8]| Manifest::decode(bytes).ok().map(|m| m.blobs());
    let (store, r) =
        Store::rebuild_index(&path, Options::default(), &refs_of).map_err(|e| match e {
            autosave::store::Error::Busy { .. } => anyhow::Error::new(e).context(
                "the store is open in another program (an application's autosave session, \
                 `autosave watch`, another command): close it, then repair the index",
            ),
            e => e.into(),
        })?;
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
