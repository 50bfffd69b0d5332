//! `autosave restore SNAP --target DIR [PATH]`: materialise a snapshot as a directory.

use std::path::{Path, PathBuf};

use anyhow::Result;
use autosave::tree::{
    self, Durability, EntryPath, KIND_DIR, KIND_SYMLINK, Manifest, ManifestEntry, RestoreOptions,
    RestoreReport,
};
use serde::Serialize;

use super::{Ctx, manifest, resolve};
use crate::cli::SnapRef;
use crate::exit::{Exit, Failure};
use crate::output::{self, table};

/// What `restore` takes from the command line.
pub(crate) struct Request<'a> {
    pub(crate) snap: SnapRef,
    pub(crate) only: Option<&'a EntryPath>,
    pub(crate) target: &'a Path,
    pub(crate) force: bool,
    pub(crate) dry_run: bool,
    /// Make every file durable before returning (`--no-sync` turns it off).
    pub(crate) sync: bool,
}

#[derive(Serialize)]
struct Doc {
    snapshot: u64,
    target: String,
    dry_run: bool,
    files: u64,
    symlinks: u64,
    dirs: u64,
    bytes: u64,
    /// Temp files of earlier restores into the target, killed mid-file, that this one removed
    /// (0 with `--dry-run`).
    stale_temps_removed: u64,
    /// With `--dry-run`: what would be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<Vec<PlannedDoc>>,
}

#[derive(Serialize)]
struct PlannedDoc {
    path: String,
    kind: String,
    size: u64,
    /// The file that would be written.
    file: String,
}

pub(crate) fn run(ctx: &Ctx, req: &Request<'_>) -> Result<Exit> {
    let store = ctx.open()?;
    let info = resolve(&store, req.snap)?;
    let manifest = manifest(&store, &info)?;
    let mut options = RestoreOptions {
        force: req.force,
        only: req.only.cloned(),
        durability: if req.sync {
            Durability::Synced
        } else {
            Durability::Unsynced
        },
        ..RestoreOptions::default()
    };
    let id = info.id.0;
    let doc = if req.dry_run {
        plan(id, &manifest, req, &options)?
    } else {
        let bar = ctx.out.bar("restoring", "entries");
        options.progress = bar.progress();
        let report = tree::restore_dir(&store, &manifest, req.target, &options).map_err(explain)?;
        drop(bar);
        done(id, req.target, &report)
    };
    let human = |d: &Doc| text(d);
    if req.dry_run {
        ctx.out.emit("restore", &doc, human)?;
    } else {
        ctx.out.report("restore", &doc, human)?;
    }
    Ok(Exit::Ok)
}

fn done(snapshot: u64, target: &Path, r: &RestoreReport) -> Doc {
    Doc {
        snapshot,
        target: target.display().to_string(),
        dry_run: false,
        files: r.files,
        symlinks: r.symlinks,
        dirs: r.dirs,
        bytes: r.bytes,
        stale_temps_removed: r.stale_temps_removed,
        entries: None,
    }
}

/// Adds the way out to a refusal to restore into a non-empty target.
fn explain(e: tree::Error) -> anyhow::Error {
    match e {
        tree::Error::TargetNotEmpty { path } => Failure::new(
            Exit::Error,
            format!(
                "restore target {} is not empty (use --force to restore into it)",
                path.display()
            ),
        )
        .into(),
        e => e.into(),
    }
}

/// What a restore would write, after the checks a restore makes before writing.
fn plan(
    snapshot: u64,
    manifest: &Manifest,
    req: &Request<'_>,
    options: &RestoreOptions,
) -> Result<Doc> {
    let entries = tree::check_restore(manifest, req.target, options).map_err(explain)?;
    let count = |kind: &str| entries.iter().filter(|e| e.kind == kind).count() as u64;
    let files = entries
        .iter()
        .filter(|e| e.kind != KIND_DIR && e.kind != KIND_SYMLINK);
    Ok(Doc {
        snapshot,
        target: req.target.display().to_string(),
        dry_run: true,
        files: files.clone().count() as u64,
        symlinks: count(KIND_SYMLINK),
        dirs: count(KIND_DIR),
        bytes: files.map(|e| e.content.len()).sum(),
        stale_temps_removed: 0,
        entries: Some(entries.iter().map(|e| planned(req.target, e)).collect()),
    })
}

fn planned(target: &Path, e: &ManifestEntry) -> PlannedDoc {
    let mut file = PathBuf::from(target);
    file.extend(e.path.keys());
    PlannedDoc {
        path: e.path.to_string(),
        kind: e.kind.clone(),
        size: e.content.len(),
        file: file.display().to_string(),
    }
}

fn text(d: &Doc) -> String {
    let mut out = String::new();
    if let Some(entries) = &d.entries {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| vec![e.kind.clone(), output::size(e.size), e.file.clone()])
            .collect();
        out.push_str(&table(&rows, &[false, true, false]));
    }
    let verb = if d.dry_run {
        "would restore"
    } else {
        "restored"
    };
    out.push_str(&format!(
        "{verb} snapshot {} into {}: {}, {}, {}, {}\n",
        d.snapshot,
        d.target,
        output::count(d.files, "file", "files"),
        output::count(d.symlinks, "symlink", "symlinks"),
        output::count(d.dirs, "empty directory", "empty directories"),
        output::size(d.bytes),
    ));
    if d.stale_temps_removed > 0 {
        out.push_str(&format!(
            "removed {} that an interrupted restore left\n",
            output::count(d.stale_temps_removed, "temp file", "temp files"),
        ));
    }
    out
}
