//! `autosave diff [A [B]]`: what changed between two snapshots.

use anyhow::Result;
use autosave::store::{SnapshotInfo, Store};
use autosave::tree::{self, Change};
use serde::Serialize;

use super::{Ctx, manifest, resolve};
use crate::cli::SnapRef;
use crate::exit::{Exit, Failure};
use crate::output::{self, table};

#[derive(Serialize)]
struct Doc {
    a: u64,
    b: u64,
    added: u64,
    removed: u64,
    modified: u64,
    /// Content bytes of `b` minus those of `a`.
    delta_bytes: i64,
    changes: Vec<ChangeDoc>,
}

#[derive(Serialize)]
struct ChangeDoc {
    /// `added`, `removed` or `modified`.
    change: &'static str,
    path: String,
    /// Size in `a` (`null` if added).
    old_size: Option<u64>,
    /// Size in `b` (`null` if removed).
    new_size: Option<u64>,
    delta_bytes: i64,
    /// Whether the bytes differ (`true` for added and removed entries).
    content: bool,
    /// Whether the kind or metadata differ (`false` for added and removed entries).
    meta: bool,
}

impl From<&Change> for ChangeDoc {
    fn from(c: &Change) -> Self {
        let (change, old_size, new_size, content, meta) = match c {
            Change::Added { len, .. } => ("added", None, Some(*len), true, false),
            Change::Removed { len, .. } => ("removed", Some(*len), None, true, false),
            Change::Modified {
                old_len,
                new_len,
                content,
                meta,
                ..
            } => ("modified", Some(*old_len), Some(*new_len), *content, *meta),
        };
        Self {
            change,
            path: c.path().to_string(),
            old_size,
            new_size,
            delta_bytes: signed(new_size.unwrap_or(0)) - signed(old_size.unwrap_or(0)),
            content,
            meta,
        }
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn run(ctx: &Ctx, a: Option<SnapRef>, b: Option<SnapRef>) -> Result<Exit> {
    let store = ctx.open()?;
    let (a, b) = pick(&store, a, b)?;
    let changes = tree::diff(&manifest(&store, &a)?, &manifest(&store, &b)?);
    let docs: Vec<ChangeDoc> = changes.iter().map(ChangeDoc::from).collect();
    let count = |what: &str| docs.iter().filter(|d| d.change == what).count() as u64;
    let doc = Doc {
        a: a.id.0,
        b: b.id.0,
        added: count("added"),
        removed: count("removed"),
        modified: count("modified"),
        delta_bytes: docs.iter().map(|d| d.delta_bytes).sum(),
        changes: docs,
    };
    ctx.out.emit("diff", &doc, text)?;
    Ok(Exit::Ok)
}

/// The two snapshots to compare: as given, with `b` defaulting to the latest and `a` to the
/// one before it.
fn pick(
    store: &Store,
    a: Option<SnapRef>,
    b: Option<SnapRef>,
) -> Result<(SnapshotInfo, SnapshotInfo)> {
    if let Some(a) = a {
        let b = resolve(store, b.unwrap_or(SnapRef::Latest))?;
        return Ok((resolve(store, a)?, b));
    }
    let mut list = store.snapshots()?;
    let n = list.len();
    match (list.pop(), list.pop()) {
        (Some(latest), Some(previous)) => Ok((previous, latest)),
        _ => Err(Failure::new(
            Exit::Error,
            format!("diff needs two snapshots and the store has {n}"),
        )
        .into()),
    }
}

fn text(d: &Doc) -> String {
    let rows: Vec<Vec<String>> = d
        .changes
        .iter()
        .map(|c| {
            let delta = output::size_delta(c.old_size.unwrap_or(0), c.new_size.unwrap_or(0));
            let note = if c.change == "modified" && !c.content {
                "  (metadata only)"
            } else {
                ""
            };
            vec![c.change.to_owned(), delta, format!("{}{note}", c.path)]
        })
        .collect();
    let total = output::size_delta(
        u64::try_from(-d.delta_bytes.min(0)).unwrap_or(0),
        u64::try_from(d.delta_bytes.max(0)).unwrap_or(0),
    );
    let mut out = table(&rows, &[false, true, false]);
    out.push_str(&format!(
        "snapshot {} -> {}: {} added, {} removed, {} modified, {total}\n",
        d.a, d.b, d.added, d.removed, d.modified
    ));
    out
}
