//! `autosave snapshot DIR`: snapshot a directory into its store.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use autosave::store::{Progress, SnapshotId, SnapshotKind, Store};
use autosave::tree::{self, DirWritten, SnapshotSpec};
use serde::Serialize;

use super::Ctx;
use crate::exit::Exit;
use crate::output::{self, Out};

/// What one directory snapshot did, as JSON documents show it.
#[derive(Debug, Serialize)]
pub(crate) struct SnapshotDoc {
    /// The new snapshot, `None` when nothing changed and nothing was committed.
    pub(crate) snapshot: Option<u64>,
    pub(crate) manifest: String,
    pub(crate) entries: u64,
    pub(crate) skipped_stat: u64,
    pub(crate) hashed: u64,
    pub(crate) bytes_hashed: u64,
    pub(crate) new_blobs: u64,
    pub(crate) bytes_written: u64,
    pub(crate) duration_ns: u64,
    pub(crate) errors: Vec<EntryErrorDoc>,
}

#[derive(Debug, Serialize)]
pub(crate) struct EntryErrorDoc {
    pub(crate) path: String,
    pub(crate) error: String,
}

impl From<&DirWritten> for SnapshotDoc {
    fn from(w: &DirWritten) -> Self {
        let r = &w.report;
        Self {
            snapshot: w.snapshot.map(|id| id.0),
            manifest: w.manifest.to_string(),
            entries: w.entries,
            skipped_stat: r.skipped_stat,
            hashed: r.hashed,
            bytes_hashed: r.bytes_hashed,
            new_blobs: r.new_blobs,
            bytes_written: r.bytes_written,
            duration_ns: u64::try_from(r.duration.as_nanos()).unwrap_or(u64::MAX),
            errors: r
                .errors
                .iter()
                .map(|e| EntryErrorDoc {
                    path: e.path.to_string(),
                    error: e.error.clone(),
                })
                .collect(),
        }
    }
}

impl SnapshotDoc {
    /// One line for people: what was written, or that nothing changed.
    pub(crate) fn line(&self) -> String {
        let cost = format!(
            "{}, {} read, {}, {} written in {}",
            output::count(self.entries, "entry", "entries"),
            output::size(self.bytes_hashed),
            output::count(self.new_blobs, "new blob", "new blobs"),
            output::size(self.bytes_written),
            output::duration(std::time::Duration::from_nanos(self.duration_ns)),
        );
        match self.snapshot {
            Some(id) => format!("snapshot {id}: {cost}"),
            None => format!("unchanged: {cost}"),
        }
    }

    /// The exit code: partial success when entries were skipped.
    pub(crate) fn exit(&self) -> Exit {
        if self.errors.is_empty() {
            Exit::Ok
        } else {
            Exit::Partial
        }
    }

    /// Warns about each skipped entry on stderr.
    pub(crate) fn warn_errors(&self, out: &Out) {
        for e in &self.errors {
            out.warn(&format!("skipped {}: {}", e.path, e.error));
        }
    }
}

#[derive(Serialize)]
struct Doc {
    dir: String,
    store: String,
    #[serde(flatten)]
    snapshot: SnapshotDoc,
}

pub(crate) fn run(ctx: &Ctx, dir: &Path, label: Option<&str>, always: bool) -> Result<Exit> {
    let dir = canonical_dir(dir)?;
    let store = ctx.open_for_dir(&dir)?;
    let bar = ctx.out.bar("snapshotting", "entries");
    // One look at the newest snapshot: it is the parent, and unless `always`, an unchanged
    // directory records nothing (the newest snapshot already holds it).
    let latest = store.latest()?;
    let parent = latest.as_ref().map(|s| s.id);
    let unless = latest.filter(|_| !always).map(|s| s.manifest);
    let written = take(&store, &dir, label, "", parent, unless, bar.progress())?;
    drop(bar);
    let doc = Doc {
        dir: dir.display().to_string(),
        store: store.root().to_string(),
        snapshot: SnapshotDoc::from(&written),
    };
    doc.snapshot.warn_errors(&ctx.out);
    ctx.out
        .report("snapshot", &doc, |d| format!("{}\n", d.snapshot.line()))?;
    Ok(doc.snapshot.exit())
}

/// The directory, made absolute, or a clear error if it is not one.
pub(crate) fn canonical_dir(dir: &Path) -> Result<PathBuf> {
    let canonical =
        std::fs::canonicalize(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    anyhow::ensure!(canonical.is_dir(), "{} is not a directory", dir.display());
    Ok(canonical)
}

/// The label a snapshot of `dir` gets unless one is given: the directory's path.
pub(crate) fn default_label(dir: &Path) -> String {
    dir.display().to_string()
}

/// Snapshots `dir` as an autosave with `meta` and `parent` (the newest snapshot); with `unless`,
/// commits nothing if the manifest would be that one.
pub(crate) fn take(
    store: &Store,
    dir: &Path,
    label: Option<&str>,
    meta: &str,
    parent: Option<SnapshotId>,
    unless: Option<autosave::store::Digest>,
    progress: Progress,
) -> Result<DirWritten> {
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    spec.label = label.map_or_else(|| default_label(dir), str::to_owned);
    spec.meta = meta.to_owned();
    spec.parent = parent;
    spec.unless_manifest = unless;
    spec.progress = progress;
    tree::snapshot_dir(store, dir, &spec).with_context(|| format!("snapshotting {}", dir.display()))
}
