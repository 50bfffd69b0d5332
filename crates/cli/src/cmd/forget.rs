//! `autosave forget`: delete snapshots by id or by a keep policy. Their blobs stay until `gc`,
//! as with restic's `forget` without `--prune`.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use autosave::store::{SnapshotId, SnapshotInfo, Store, now_ns};
use serde::Serialize;

use super::Ctx;
use crate::cli::ForgetArgs;
use crate::exit::{Exit, Failure};
use crate::output::{self, table};

#[derive(Serialize)]
struct Doc {
    dry_run: bool,
    /// Ids kept, newest first.
    kept: Vec<u64>,
    /// Ids deleted (or, with `--dry-run`, that would be), newest first.
    removed: Vec<u64>,
}

pub(crate) fn run(ctx: &Ctx, args: &ForgetArgs) -> Result<Exit> {
    let store = ctx.open()?;
    let mut all = store.snapshots()?;
    all.reverse();
    let doomed: BTreeSet<SnapshotId> = match args.keep_last {
        Some(n) => by_policy(&all, n, args.keep_within, now_ns()),
        None => by_id(&store, &args.ids)?,
    };
    if !args.dry_run {
        let ids: Vec<SnapshotId> = doomed.iter().copied().collect();
        store.delete_snapshots(&ids)?;
    }
    let (removed, kept): (Vec<&SnapshotInfo>, Vec<&SnapshotInfo>) =
        all.iter().partition(|s| doomed.contains(&s.id));
    let doc = Doc {
        dry_run: args.dry_run,
        kept: kept.iter().map(|s| s.id.0).collect(),
        removed: removed.iter().map(|s| s.id.0).collect(),
    };
    let human = |d: &Doc| text(ctx, d, &removed);
    if args.dry_run {
        ctx.out.emit("forget", &doc, human)?;
    } else {
        ctx.out.report("forget", &doc, human)?;
    }
    Ok(Exit::Ok)
}

/// Everything but the `keep_last` newest and those newer than `now - keep_within`.
fn by_policy(
    newest_first: &[SnapshotInfo],
    keep_last: u64,
    keep_within: Option<Duration>,
    now: i64,
) -> BTreeSet<SnapshotId> {
    let cutoff =
        keep_within.map(|d| now.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)));
    newest_first
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            let recent = cutoff.is_some_and(|c| s.created_ns >= c);
            (*i as u64) >= keep_last && !recent
        })
        .map(|(_, s)| s.id)
        .collect()
}

fn by_id(store: &Store, ids: &[SnapshotId]) -> Result<BTreeSet<SnapshotId>> {
    for &id in ids {
        if store.snapshot(id)?.is_none() {
            return Err(Failure::new(Exit::Error, format!("no snapshot {id}")).into());
        }
    }
    Ok(ids.iter().copied().collect())
}

fn text(ctx: &Ctx, d: &Doc, removed: &[&SnapshotInfo]) -> String {
    let verb = if d.dry_run { "would remove" } else { "removed" };
    let mut out = format!(
        "{verb} {}, kept {}\n",
        output::count(d.removed.len() as u64, "snapshot", "snapshots"),
        d.kept.len()
    );
    let rows: Vec<Vec<String>> = removed
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.kind.to_string(),
                output::local_time(s.created_ns),
                s.label.clone(),
            ]
        })
        .collect();
    out.push_str(&table(&rows, &[true, false, false, false]));
    if !d.dry_run && !d.removed.is_empty() {
        out.push_str(&format!(
            "their data stays until: autosave {}gc\n",
            ctx.store_flag()
        ));
    }
    out
}
