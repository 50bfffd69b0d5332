//! `autosave check [--read-data]`: find damaged blobs, name the snapshots that need them, and
//! say what to run next.

use anyhow::Result;
use autosave::store::{Damage, Problem, VerifyReport};
use serde::Serialize;

use super::Ctx;
use crate::exit::Exit;
use crate::output::{self, Out};

#[derive(Serialize)]
struct Doc {
    read_data: bool,
    snapshots: u64,
    blobs_checked: u64,
    bytes_read: u64,
    clean: bool,
    damaged: Vec<DamageDoc>,
    damaged_snapshots: Vec<u64>,
    /// Snapshot records the index has no row for: snapshots the index lost, or interrupted
    /// commits. `repair index` brings them back; `gc` would delete them.
    unindexed_records: Vec<String>,
    /// Commands to run next, in order (empty when clean and nothing is unindexed).
    next: Vec<String>,
}

#[derive(Serialize)]
struct DamageDoc {
    digest: String,
    /// `not_in_index`, `file_not_in_index`, `missing`, `wrong_size`, `corrupt`, `unreadable`
    /// (or `other`).
    problem: &'static str,
    /// Whether it is a snapshot record (which no new snapshot writes again).
    record: bool,
    /// For `corrupt` and `unreadable`: what the store found.
    detail: Option<String>,
    /// For `wrong_size`: bytes the index expects and bytes found.
    expected_size: Option<u64>,
    found_size: Option<u64>,
    snapshots: Vec<u64>,
}

impl From<&Damage> for DamageDoc {
    fn from(d: &Damage) -> Self {
        let (problem, detail, sizes) = match &d.problem {
            Problem::NotInIndex => ("not_in_index", None, None),
            Problem::FileNotInIndex => ("file_not_in_index", None, None),
            Problem::Missing => ("missing", None, None),
            Problem::WrongSize { expected, found } => {
                ("wrong_size", None, Some((*expected, *found)))
            }
            Problem::Corrupt { reason } => ("corrupt", Some(reason.clone()), None),
            Problem::Unreadable { reason } => ("unreadable", Some(reason.clone()), None),
            other => ("other", Some(format!("{other:?}")), None),
        };
        Self {
            digest: d.digest.to_string(),
            problem,
            detail,
            expected_size: sizes.map(|s| s.0),
            found_size: sizes.map(|s| s.1),
            snapshots: d.snapshots.iter().map(|s| s.0).collect(),
            record: d.record,
        }
    }
}

pub(crate) fn run(ctx: &Ctx, read_data: bool) -> Result<Exit> {
    let store = ctx.open()?;
    let what = if read_data { "reading" } else { "checking" };
    let bar = ctx.out.bar(what, "blobs");
    let report = store.verify_with(read_data, &bar.progress())?;
    drop(bar);
    let doc = Doc {
        read_data,
        snapshots: report.snapshots,
        blobs_checked: report.blobs_checked,
        bytes_read: report.bytes_read,
        clean: report.is_clean(),
        damaged: report.damaged.iter().map(DamageDoc::from).collect(),
        damaged_snapshots: report.damaged_snapshots.iter().map(|s| s.0).collect(),
        unindexed_records: report
            .unindexed_records
            .iter()
            .map(ToString::to_string)
            .collect(),
        next: next_commands(ctx, &report),
    };
    ctx.out.emit("check", &doc, |d| text(&ctx.out, d))?;
    Ok(if doc.clean { Exit::Ok } else { Exit::Damaged })
}

/// What to run to get a sound store back: rebuild the index if it lost rows or snapshots, then
/// forget the damaged blobs (so that a new snapshot can store their bytes again), or, when no
/// blob is left to forget, the damaged snapshots, and collect their blobs.
fn next_commands(ctx: &Ctx, report: &VerifyReport) -> Vec<String> {
    let store = ctx.store_flag();
    let mut next = Vec::new();
    // A corrupt blob first: its repair may only rewrite a header that names the wrong kind,
    // which a rebuild reads files by (one done first would lose a record taken for data, or
    // leave out data taken for a record). The repair's own report then says what follows,
    // `repair index` included.
    if report
        .damaged
        .iter()
        .any(|d| matches!(d.problem, Problem::Corrupt { .. }))
    {
        next.push(format!("autosave {store}repair blobs --read-data"));
        return next;
    }
    // Snapshot records without rows (the index lost commits) and intact files without rows are
    // what a rebuild brings back. A referenced blob without a row or an intact file (an inline
    // blob a rebuild could not carry over, or a damaged blob `repair blobs` forgot) it would not
    // find.
    if !report.unindexed_records.is_empty()
        || report
            .damaged
            .iter()
            .any(|d| d.problem == Problem::FileNotInIndex)
    {
        next.push(format!("autosave {store}repair index"));
    }
    if report.is_clean() {
        return next;
    }
    // A damaged blob whose bytes a new snapshot may store again (data or a manifest): its row
    // goes first (the repair's own report then says what follows), or later snapshots would
    // keep deduplicating against it.
    let mendable =
        |d: &Damage| matches!(d.problem, Problem::Missing | Problem::WrongSize { .. }) && !d.record;
    if report.damaged.iter().any(mendable) {
        next.push(format!("autosave {store}repair blobs"));
        return next;
    }
    if next.iter().any(|n| n.ends_with("repair index")) {
        // The rebuild's own report names what stays damaged.
        return next;
    }
    // A file that could not be read (permissions, an I/O error) may well be intact: nothing is
    // to be forgotten, and no GC run, until it can be read again.
    if report
        .damaged
        .iter()
        .any(|d| matches!(d.problem, Problem::Unreadable { .. }))
    {
        return next;
    }
    let ids: Vec<String> = report
        .damaged_snapshots
        .iter()
        .map(ToString::to_string)
        .collect();
    next.push(format!("autosave {store}forget {}", ids.join(" ")));
    next.push(format!("autosave {store}gc"));
    next
}

fn text(out: &Out, d: &Doc) -> String {
    let mut text = format!(
        "checked {}, {}",
        output::count(d.snapshots, "snapshot", "snapshots"),
        output::count(d.blobs_checked, "blob", "blobs"),
    );
    if d.read_data {
        text.push_str(&format!(", read {}", output::size(d.bytes_read)));
    }
    if d.clean {
        text.push_str(": no damage found\n");
    } else {
        text.push('\n');
        for damage in &d.damaged {
            text.push_str(&damage_line(out, damage));
        }
        let ids: Vec<String> = d
            .damaged_snapshots
            .iter()
            .map(ToString::to_string)
            .collect();
        text.push_str(&format!("damaged snapshots: {}\n", ids.join(", ")));
        if d.damaged.iter().any(|x| x.problem == "unreadable") {
            text.push_str(
                "some blob files could not be read: make them readable (permissions, the disk), \
                 then check again; nothing is forgotten meanwhile\n",
            );
        }
    }
    if !d.unindexed_records.is_empty() {
        text.push_str(&format!(
            "{} not in the index: snapshots the index lost, or commits that were interrupted; \
             `repair index` brings them back, `gc` would delete them\n",
            output::count(
                d.unindexed_records.len() as u64,
                "snapshot record",
                "snapshot records"
            ),
        ));
    }
    for (i, command) in d.next.iter().enumerate() {
        let lead = if i == 0 { "next:" } else { "     " };
        text.push_str(&format!("{lead} {command}\n"));
    }
    text
}

fn damage_line(out: &Out, d: &DamageDoc) -> String {
    let digest = if out.verbose > 0 {
        d.digest.clone()
    } else {
        d.digest[..12.min(d.digest.len())].to_owned()
    };
    let problem = match (&d.detail, d.expected_size, d.found_size) {
        (Some(detail), _, _) => format!("{} ({detail})", d.problem),
        (None, Some(expected), Some(found)) => {
            format!("{} ({expected} bytes expected, {found} found)", d.problem)
        }
        _ => d.problem.to_owned(),
    };
    let ids: Vec<String> = d.snapshots.iter().map(ToString::to_string).collect();
    format!(
        "damaged blob {digest}: {problem}; needed by snapshot {}\n",
        ids.join(", ")
    )
}
