//! `autosave demo [--mib N] [--dir DIR]`: a scripted session on a generated project, one row per
//! step, then where the store is so the other commands can be tried on it.

use std::path::Path;

use anyhow::{Context as _, Result};
use autosave::sample::{DemoStep, run_demo};
use camino::Utf8PathBuf;
use serde::Serialize;

use super::Ctx;
use crate::exit::Exit;
use crate::output;

#[derive(Serialize)]
struct Step {
    name: &'static str,
    snapshot: Option<u64>,
    entries: u64,
    skipped: u64,
    hashed: u64,
    bytes_hashed: u64,
    new_blobs: u64,
    bytes_written: u64,
    duration_ns: u64,
    removed: Vec<u64>,
    snapshots: u64,
    stored_bytes: u64,
    logical_bytes: u64,
    detail: String,
}

#[derive(Serialize)]
struct Doc {
    project: String,
    store: String,
    steps: Vec<Step>,
}

pub(crate) fn run(ctx: &Ctx, mib: usize, dir: Option<&Path>) -> Result<Exit> {
    let project = match dir {
        Some(dir) => dir.to_path_buf(),
        None => tempfile::Builder::new()
            .prefix("autosave-demo-")
            .tempdir()
            .context("creating a temporary directory")?
            .keep(),
    };
    let project = Utf8PathBuf::from_path_buf(project)
        .map_err(|p| anyhow::anyhow!("{} is not UTF-8", p.display()))?;
    ctx.out.note(&format!(
        "generating a project of about {mib} MiB in {project}"
    ));
    let mut steps = Vec::new();
    let spinner = ctx.out.spinner("running the demo session");
    run_demo(&project, mib, |s| steps.push(step(s)))?;
    drop(spinner);
    let store = project.join(autosave::tree::STORE_DIR_NAME);
    let doc = Doc {
        project: project.to_string(),
        store: store.to_string(),
        steps,
    };
    ctx.out.emit("demo", &doc, text)?;
    Ok(Exit::Ok)
}

fn step(s: &DemoStep) -> Step {
    let (tree, duration, removed) = match &s.report {
        Some(r) => (
            r.tree.clone(),
            r.duration,
            r.removed.iter().map(|id| id.0).collect(),
        ),
        None => (Default::default(), Default::default(), Vec::new()),
    };
    Step {
        name: s.name,
        snapshot: s.report.as_ref().and_then(|r| r.snapshot).map(|id| id.0),
        entries: tree.entries,
        skipped: tree.skipped_token + tree.skipped_stat,
        hashed: tree.hashed,
        bytes_hashed: tree.bytes_hashed,
        new_blobs: tree.new_blobs,
        bytes_written: tree.bytes_written,
        duration_ns: u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
        removed,
        snapshots: s.stats.snapshots,
        stored_bytes: s.stats.stored_bytes,
        logical_bytes: s.stats.logical_bytes,
        detail: s.detail.clone(),
    }
}

fn text(d: &Doc) -> String {
    let mut rows = vec![
        [
            "step",
            "snapshot",
            "entries",
            "skipped",
            "hashed",
            "new bytes",
            "time",
            "dedup",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for s in &d.steps {
        let dedup = if s.stored_bytes == 0 {
            1.0
        } else {
            s.logical_bytes as f64 / s.stored_bytes as f64
        };
        rows.push(vec![
            s.name.to_owned(),
            s.snapshot.map_or("-".to_owned(), |id| id.to_string()),
            s.entries.to_string(),
            s.skipped.to_string(),
            format!("{} ({})", s.hashed, output::size(s.bytes_hashed)),
            output::size(s.bytes_written),
            output::duration(std::time::Duration::from_nanos(s.duration_ns)),
            format!("{dedup:.2}x"),
        ]);
    }
    let mut out = output::table(&rows, &[false, true, true, true, true, true, true, true]);
    out.push('\n');
    for s in &d.steps {
        out.push_str(&format!("{}: {}\n", s.name, s.detail));
    }
    out.push_str(&format!(
        "\nThe store is {}. Try:\n  autosave --store {} snapshots\n  autosave --store {} diff\n  autosave --store {} check --read-data\n",
        d.store, d.store, d.store, d.store
    ));
    out
}
