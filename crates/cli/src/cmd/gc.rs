//! `autosave gc [--dry-run] [--discard-unindexed] [--allow-empty]`: remove blobs no snapshot
//! references.

use anyhow::Result;
use autosave::store::{GcOptions, UnindexedRecords};
use serde::Serialize;

use super::Ctx;
use crate::exit::Exit;
use crate::output;

#[derive(Serialize)]
struct Doc {
    dry_run: bool,
    blobs_kept: u64,
    blobs_removed: u64,
    bytes_freed: u64,
    stray_files_removed: u64,
    stray_bytes_freed: u64,
}

pub(crate) fn run(
    ctx: &Ctx,
    dry_run: bool,
    discard_unindexed: bool,
    allow_empty: bool,
) -> Result<Exit> {
    let store = ctx.open()?;
    let bar = ctx.out.bar("collecting garbage", "blobs");
    let r = store.gc_with(GcOptions {
        dry_run,
        progress: bar.progress(),
        unindexed: match discard_unindexed {
            true => UnindexedRecords::Delete,
            false => UnindexedRecords::Refuse,
        },
        allow_empty,
    })?;
    drop(bar);
    let doc = Doc {
        dry_run,
        blobs_kept: r.blobs_kept,
        blobs_removed: r.blobs_removed,
        bytes_freed: r.bytes_freed,
        stray_files_removed: r.stray_files_removed,
        stray_bytes_freed: r.stray_bytes_freed,
    };
    if dry_run {
        ctx.out.emit("gc", &doc, text)?;
    } else {
        ctx.out.report("gc", &doc, text)?;
    }
    Ok(Exit::Ok)
}

fn text(d: &Doc) -> String {
    let verb = if d.dry_run { "would remove" } else { "removed" };
    format!(
        "{verb} {} ({}) and {} ({}); kept {}\n",
        output::count(d.blobs_removed, "blob", "blobs"),
        output::size(d.bytes_freed),
        output::count(d.stray_files_removed, "stray file", "stray files"),
        output::size(d.stray_bytes_freed),
        output::count(d.blobs_kept, "blob", "blobs"),
    )
}
