//! `autosave watch DIR`: autosave a directory with the policy until Ctrl-C.
//!
//! The directory is polled: every `--poll-interval` its stat signature (each path's type, size
//! and mtime) is compared with the previous one. A change is an `Edited` event and makes the
//! directory busy; `--idle` seconds without a change make it idle again, and the policy fires a
//! due autosave on that transition. At start, and on Ctrl-C after the autosave in flight, the
//! directory is snapshotted if it differs from its newest snapshot.
//!
//! The watch's snapshots carry [`WATCH_META`] as their metadata. With `--keep-last N`, each
//! committed autosave that read every entry is followed by retention: the watch's own
//! autosaves of this directory beyond the N newest are deleted and their data collected. A
//! collection that cannot run (another process has the store open, or the index lost
//! snapshots that `repair index` would bring back) is a warning; the data goes at a later one.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use autosave::policy::{Action, Config, Event, Policy};
use autosave::store::{
    Digest, Error as StoreError, GcOptions, GcRefusal, Progress, SnapshotId, SnapshotInfo,
    SnapshotKind, Store,
};
use autosave::tree::{Manifest, STORE_DIR_NAME};
use serde::Serialize;

use super::Ctx;
use super::snapshot::{self, SnapshotDoc};
use crate::cli::WatchArgs;
use crate::exit::{Exit, Failure};
use crate::signals;

#[derive(Serialize)]
struct Doc {
    dir: String,
    store: String,
    /// Every snapshot this run committed, oldest first.
    snapshots: Vec<SnapshotDoc>,
    /// Autosaves that failed (each was retried later).
    failures: Vec<String>,
    /// Snapshots deleted by `--keep-last`, oldest first.
    removed: Vec<u64>,
    /// Bytes of blob files (and of stray files left by interrupted writes) their collections
    /// freed.
    bytes_freed: u64,
    /// Why retention kept older autosaves, or deleted them without collecting their data.
    retention_warnings: Vec<String>,
}

/// The metadata of the watch's snapshots: retention retires only snapshots with it, never
/// those `autosave snapshot` took.
pub(crate) const WATCH_META: &str = r#"{"taken_by":"autosave watch"}"#;

/// One look at the directory: every path with its type, size and mtime.
type Signature = Vec<(OsString, u32, u64, i64)>;

struct Watcher<'a> {
    ctx: &'a Ctx,
    store: Store,
    dir: PathBuf,
    label: String,
    idle: Duration,
    keep_last: Option<u64>,
    policy: Policy,
    seen: Signature,
    last_change: Instant,
    busy: bool,
    doc: Doc,
}

pub(crate) fn run(ctx: &Ctx, args: &WatchArgs) -> Result<Exit> {
    let (idle, poll) = (
        seconds(args.idle, "--idle")?,
        seconds(args.poll_interval, "--poll-interval")?,
    );
    if poll.is_zero() {
        return Err(Failure::new(Exit::Usage, "--poll-interval must be above 0").into());
    }
    let dir = snapshot::canonical_dir(&args.dir)?;
    let store = ctx.open_for_dir(&dir)?;
    signals::stop_gracefully()?;
    let config = Config {
        interval: Duration::from_secs(args.interval),
        ..Config::default()
    };
    let policy = Policy::new(config, Instant::now());
    let mut w = Watcher::new(ctx, store, dir, idle, args.keep_last, policy)?;
    ctx.out.note(&format!(
        "watching {} (store {}); Ctrl-C to stop",
        w.dir.display(),
        w.store.root()
    ));
    w.autosave()?;
    w.policy.handle(Event::Idle, Instant::now());
    loop {
        sleep_until(Instant::now() + poll);
        if signals::stop_requested() {
            break;
        }
        w.tick(Instant::now());
    }
    ctx.out
        .note("stopping: taking a final snapshot if anything changed");
    w.autosave()?;
    ctx.out.report("watch", &w.doc, |_| String::new())?;
    Ok(Exit::Ok)
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        Failure::new(
            Exit::Usage,
            format!("{flag} must be a number of seconds, at least 0"),
        )
        .into()
    })
}

/// Sleeps until `until`, waking early if a stop is requested.
fn sleep_until(until: Instant) {
    loop {
        let now = Instant::now();
        if now >= until || signals::stop_requested() {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

impl<'a> Watcher<'a> {
    fn new(
        ctx: &'a Ctx,
        store: Store,
        dir: PathBuf,
        idle: Duration,
        keep_last: Option<u64>,
        policy: Policy,
    ) -> Result<Self> {
        let label = snapshot::default_label(&dir);
        let seen = signature(&dir, store.root().as_std_path());
        let doc = Doc {
            dir: dir.display().to_string(),
            store: store.root().to_string(),
            snapshots: Vec::new(),
            failures: Vec::new(),
            removed: Vec::new(),
            bytes_freed: 0,
            retention_warnings: Vec::new(),
        };
        Ok(Self {
            ctx,
            store,
            dir,
            label,
            idle,
            keep_last,
            policy,
            seen,
            last_change: Instant::now(),
            busy: false,
            doc,
        })
    }

    /// Looks at the directory, tells the policy what changed, and does what it asks.
    fn tick(&mut self, now: Instant) {
        let seen = signature(&self.dir, self.store.root().as_std_path());
        if seen != self.seen {
            self.seen = seen;
            self.last_change = now;
            self.policy.handle(Event::Edited, now);
            if !self.busy {
                self.busy = true;
                self.policy.handle(Event::Busy, now);
            }
        } else if self.busy && now.duration_since(self.last_change) >= self.idle {
            self.busy = false;
            self.policy.handle(Event::Idle, now);
        }
        while let Some(action) = self.policy.poll(now) {
            if action == Action::Autosave {
                let ok = self.autosave().is_ok();
                self.policy
                    .handle(Event::AutosaveFinished { ok }, Instant::now());
            }
        }
    }

    /// Snapshots the directory unless it equals its newest snapshot; reports a failure on
    /// stderr and in the document.
    fn autosave(&mut self) -> Result<()> {
        // Asked each time, not remembered: a snapshot forgotten (and collected) since must not
        // make the tree it held count as saved.
        let written = newest(&self.store, &self.label).and_then(|(parent, unless)| {
            snapshot::take(
                &self.store,
                &self.dir,
                Some(&self.label),
                WATCH_META,
                parent,
                unless,
                Progress::none(),
            )
        });
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                let text = crate::output::error_chain(&e);
                self.ctx.out.warn(&format!("autosave failed: {text}"));
                self.doc.failures.push(text);
                return Err(e);
            }
        };
        let doc = SnapshotDoc::from(&written);
        doc.warn_errors(&self.ctx.out);
        if doc.snapshot.is_some() {
            if !self.ctx.out.json && !self.ctx.out.quiet {
                crate::output::stdout(&format!("{}\n", doc.line()))?;
            }
            let complete = doc.errors.is_empty();
            let skipped = doc.errors.len();
            self.doc.snapshots.push(doc);
            match self.keep_last {
                Some(keep) if complete => self.retain(keep),
                // The entries left out may be in the older autosaves alone: they stay.
                Some(_) => self.retention_warning(format!(
                    "kept the older autosaves: {} could not be read",
                    crate::output::count(skipped as u64, "entry", "entries")
                )),
                None => {}
            }
        }
        Ok(())
    }

    /// Deletes the watch's autosaves of this directory beyond the `keep` newest and collects
    /// their data. The autosave just committed stands whatever happens here, so a failure is a
    /// warning.
    fn retain(&mut self, keep: u64) {
        let doomed = match self.store.snapshots() {
            Ok(all) => beyond(&all, &self.label, keep),
            Err(e) => return self.retention_warning(format!("retention failed: {e}")),
        };
        if doomed.is_empty() {
            return;
        }
        if let Err(e) = self.store.delete_snapshots(&doomed) {
            return self.retention_warning(format!("retention failed: {e}"));
        }
        self.doc.removed.extend(doomed.iter().map(|id| id.0));
        let removed = format!(
            "{} ({})",
            crate::output::count(doomed.len() as u64, "snapshot", "snapshots"),
            doomed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        // As a session's retention collects: snapshot records the index lost hold the
        // collection back (`repair index` brings them back; a sweep would make the loss
        // permanent), while interrupted commits are swept.
        match self
            .store
            .gc_holding_complete_records(GcOptions::default(), &Manifest::refs_of)
        {
            Ok(gc) => {
                let freed = gc.bytes_freed + gc.stray_bytes_freed;
                self.doc.bytes_freed += freed;
                if !self.ctx.out.json && !self.ctx.out.quiet {
                    let line = format!("removed {removed}, {} freed\n", crate::output::size(freed));
                    // The deletion is done: a stdout that cannot take the line changes nothing.
                    let _ = crate::output::stdout(&line);
                }
            }
            Err(e) => {
                let store = super::shell_word(self.store.root().as_str());
                let why = match e {
                    StoreError::Busy { .. } => format!(
                        "the store is in use (a later collection, or `autosave --store {store} \
                         gc`, frees it)"
                    ),
                    StoreError::GcRefused {
                        reason: reason @ GcRefusal::UnindexedSnapshots { .. },
                    } => format!("{reason}: `autosave --store {store} repair index`"),
                    e => crate::output::error_chain(&e.into()),
                };
                self.retention_warning(format!(
                    "removed {removed} but could not collect the data they held: {why}"
                ));
            }
        }
    }

    /// Warns on stderr and records the warning in the document.
    fn retention_warning(&mut self, text: String) {
        self.ctx.out.warn(&text);
        self.doc.retention_warnings.push(text);
    }
}

/// The watch's autosaves labelled `label` beyond the `keep` newest, oldest first (`all` is
/// oldest first). Snapshots of other labels, explicit ones and those `autosave snapshot` took
/// (without [`WATCH_META`]) are never the watch's to drop.
fn beyond(all: &[SnapshotInfo], label: &str, keep: u64) -> Vec<SnapshotId> {
    let mine: Vec<SnapshotId> = all
        .iter()
        .filter(|s| s.kind == SnapshotKind::Autosave && s.label == label && s.meta == WATCH_META)
        .map(|s| s.id)
        .collect();
    let excess = mine
        .len()
        .saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
    mine[..excess].to_vec()
}

/// The directory's stat signature, skipping store directories; entries that vanish while being
/// looked at are left out (the next look sees the change).
fn signature(dir: &Path, store: &Path) -> Signature {
    let store = std::fs::canonicalize(store).ok();
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == STORE_DIR_NAME || store.as_deref() == Some(path.as_path()) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.push((
                path.into_os_string(),
                file_type(&meta),
                meta.len(),
                mtime_ns(&meta),
            ));
        }
    }
    out.sort();
    out
}

fn file_type(meta: &std::fs::Metadata) -> u32 {
    let t = meta.file_type();
    u32::from(t.is_dir()) | u32::from(t.is_symlink()) << 1 | u32::from(t.is_file()) << 2
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The newest snapshot (the parent of the next), and the manifest of the newest snapshot labelled
/// `label` (this directory's), if any.
fn newest(store: &Store, label: &str) -> Result<(Option<SnapshotId>, Option<Digest>)> {
    // Two rows, however many snapshots a long watch has left in the store.
    let parent = store.latest()?.map(|s| s.id);
    let unless = store.latest_labelled(label)?.map(|s| s.manifest);
    Ok((parent, unless))
}
