//! [`Session`]: one host's claim on a store, with autosave, explicit save and retention.

use std::time::{Duration, Instant};

use autosave_store::{
    Digest, GcOptions, GcRefusal, GcReport, SnapshotId, SnapshotInfo, SnapshotKind, Store,
};
use autosave_tree::{
    ChangeCache, EntryPath, Manifest, Node, Report, SnapshotSpec, Token, write_snapshot,
};
use camino::{Utf8Path, Utf8PathBuf};

use crate::claim::Claim;
use crate::error::{Error, Result};

/// How to open a session.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the store lives. Default `None`: `<project_dir>/.autosave`. A host whose working
    /// directory may be deleted after a crash should put it elsewhere.
    pub store_dir: Option<Utf8PathBuf>,
    /// Open without claiming the store: reads work while another session is live, writes fail
    /// with [`Error::ReadOnly`]. Default `false`.
    pub read_only: bool,
    /// How many autosaves to keep besides the newest explicit save: at least 1
    /// ([`Session::open`] refuses 0 with [`Error::InvalidOptions`]). Default 10.
    pub keep_autosaves: usize,
    /// Options for opening (and, if there is none yet, creating) the store. Default: the
    /// store's defaults, with `create: true` unless `read_only`.
    pub store: autosave_store::Options,
}

/// Why the clean-up after a save did not run or did not finish ([`SaveReport::gc_skipped`]).
/// Whatever it left goes at a later clean-up.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Skipped {
    /// The tree had entries that could not be read ([`Report::errors`]): nothing was removed,
    /// since an older snapshot may hold the only copy of their last content.
    #[error(
        "{entries} entr(y/ies) could not be read, so no older snapshot was removed: one may hold \
         the only copy of their last content"
    )]
    EntryErrors {
        /// How many entries.
        entries: usize,
    },
    /// Another process held the store; the snapshots were removed and their blobs go at the
    /// next collection.
    #[error("another process holds the store; the blobs go at the next collection")]
    Busy,
    /// The store refused to collect; with [`autosave_store::GcRefusal::MissingBlobs`] it needs
    /// repair (`autosave check`).
    #[error("gc refused: {0}")]
    Refused(autosave_store::GcRefusal),
    /// Complete snapshot records have no index row ([`Store::complete_unindexed_records`]):
    /// snapshots the index lost that this session could not bring back. Collecting would
    /// delete them for good; `autosave repair index` (with the application closed) brings them
    /// back.
    #[error(
        "{count} complete snapshot record(s) are not in the index, first {first}: snapshots the \
         index lost, or commits interrupted while another process held the store; close the \
         application and rebuild the index to bring them back (`autosave repair index`), or \
         collect with them deleted"
    )]
    UnindexedRecords {
        /// How many.
        count: usize,
        /// The first, by creation time.
        first: autosave_store::Digest,
    },
    /// Removing or collecting failed.
    #[error("clean-up failed: {0}")]
    Failed(std::sync::Arc<Error>),
}

impl Default for Options {
    fn default() -> Self {
        Self {
            store_dir: None,
            read_only: false,
            keep_autosaves: 10,
            store: autosave_store::Options::default(),
        }
    }
}

/// What one autosave or explicit save did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SaveReport {
    /// The new snapshot; `None` when the tree equals the newest snapshot (nothing written).
    pub snapshot: Option<SnapshotId>,
    /// The tree's report: entries seen, skipped by token or stat, hashed, new blobs, bytes
    /// hashed and written, time, per-entry errors.
    pub tree: Report,
    /// Snapshots removed by retention (or, after an explicit save, the superseded autosaves).
    pub removed: Vec<SnapshotId>,
    /// The garbage collection that followed a removal, if one ran.
    pub gc: Option<GcReport>,
    /// Why the clean-up after the save (removing snapshots, then collecting their blobs) did not
    /// run or did not finish, if it did not. The save itself stands either way: once it
    /// committed, a failed clean-up is reported here, never as an error of the save.
    pub gc_skipped: Option<Skipped>,
    /// Wall time of the whole operation.
    pub duration: Duration,
}

/// A host's session on a project's autosave store.
///
/// Holds the store's claim (see [`Claim`]) for its whole life, unless opened read-only. Keeps a
/// change cache so that each autosave reads only what changed.
#[derive(Debug)]
pub struct Session {
    store: Store,
    claim: Option<Claim>,
    cache: ChangeCache,
    keep_autosaves: usize,
    adopted: Vec<SnapshotId>,
    forgotten: Vec<Digest>,
    /// Another process used the store when this session opened, so adoption (and the check
    /// for damaged blobs) waits for the first save: a record it leaves would become older than
    /// that save's snapshot, and then no session would adopt it.
    adoption_pending: bool,
}

impl Session {
    /// Opens (creating if needed) the store of `project_dir` and claims it.
    ///
    /// A second live session on the same store gets [`Error::Locked`] naming the holder. A
    /// writable session first brings back the newest snapshots the index does not list
    /// ([`Session::adopted`]), then forgets the blobs whose files are missing or the wrong
    /// size ([`Session::forgotten_blobs`]), so that its saves store their bytes again. While an
    /// index rebuild (`autosave repair index`) runs on the
    /// store, opening waits for it to finish; while the session is open, no rebuild starts.
    pub fn open(project_dir: impl AsRef<Utf8Path>, options: Options) -> Result<Self> {
        if options.keep_autosaves == 0 {
            // Retention would delete each autosave as soon as it was acknowledged.
            return Err(Error::InvalidOptions {
                reason: "keep_autosaves must be at least 1: with 0, each autosave would be \
                         deleted as soon as it was written",
            });
        }
        let dir = options
            .store_dir
            .clone()
            .unwrap_or_else(|| project_dir.as_ref().join(autosave_tree::STORE_DIR_NAME));
        let store_options = autosave_store::Options {
            create: !options.read_only,
            ..options.store.clone()
        };
        // ORDER: the claim comes before anything else touches a store that may be in use.
        let claim = if options.read_only {
            None
        } else {
            std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
                op: "mkdir",
                path: dir.clone(),
                source: e,
            })?;
            Some(Claim::take(&dir)?)
        };
        let store = Store::open_with(&dir, store_options)?;
        let mut session = Self {
            store,
            cache: ChangeCache::new(),
            keep_autosaves: options.keep_autosaves,
            adopted: Vec::new(),
            forgotten: Vec::new(),
            adoption_pending: claim.is_some(),
            claim,
        };
        session.adopt_if_pending()?;
        Ok(session)
    }

    /// Blobs this session found damaged when it opened (or, if another process was using the
    /// store then, before its first save): files missing or of the wrong size, which
    /// [`Store::forget_damaged_blobs`] forgot. Every snapshot that needs one is damaged until
    /// a save stores its bytes again; the next save of a tree that still holds them does, and
    /// then every snapshot that needs them reads back intact.
    ///
    /// A store deduplicates against its index, never against its files, so without this a
    /// file lost while no session was open (a clean-up, a partial copy of the project, a
    /// failing disk) would stay lost under every later save of the same bytes.
    pub fn forgotten_blobs(&self) -> &[Digest] {
        &self.forgotten
    }

    /// Snapshots this session brought back when it opened (or, if another process was using
    /// the store then, before its first save): records with no index row, newer than every
    /// snapshot the index listed, whose blobs were all there ([`Store::adopt_unindexed`]). Either the index had lost them (damage to its write-ahead
    /// log) or the process before this one was stopped while it committed them; they are now
    /// ordinary snapshots, which [`Session::recovery`] considers and retention drops in turn.
    pub fn adopted(&self) -> &[SnapshotId] {
        &self.adopted
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether this session only reads.
    pub fn is_read_only(&self) -> bool {
        self.claim.is_none()
    }

    /// Snapshots `nodes` as an autosave, unless the tree equals the newest snapshot, then applies
    /// retention.
    pub fn autosave(&mut self, nodes: &[Node<'_>]) -> Result<SaveReport> {
        let start = Instant::now();
        self.writable()?;
        self.adopt_if_pending()?;
        let latest = self.store.latest()?;
        let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
        spec.parent = latest.as_ref().map(|s| s.id);
        spec.unless_manifest = latest.as_ref().map(|s| s.manifest);
        let written = write_snapshot(&self.store, &mut self.cache, nodes, &spec)?;
        let mut report = SaveReport::new(written.snapshot, written.report);
        if written.snapshot.is_some() {
            self.clean_up(&mut report, |s| s.beyond_retention());
        }
        report.duration = start.elapsed();
        Ok(report)
    }

    /// Records `nodes` as an explicit save (a baseline). Once it is durable, the autosaves and
    /// older baselines it supersedes are removed and their blobs collected.
    pub fn save_explicit(&mut self, nodes: &[Node<'_>]) -> Result<SaveReport> {
        let start = Instant::now();
        self.writable()?;
        self.adopt_if_pending()?;
        let mut spec = SnapshotSpec::new(SnapshotKind::Explicit);
        spec.parent = self.store.latest()?.map(|s| s.id);
        let written = write_snapshot(&self.store, &mut self.cache, nodes, &spec)?;
        let id = written.snapshot.expect("an explicit save always commits");
        let mut report = SaveReport::new(Some(id), written.report);
        // ORDER: only after the baseline's commit returned are the superseded snapshots removed.
        self.clean_up(&mut report, |s| {
            Ok(s.store
                .snapshots()?
                .iter()
                .map(|s| s.id)
                .filter(|&other| other < id)
                .collect())
        });
        report.duration = start.elapsed();
        Ok(report)
    }

    /// Remembers that the host's nodes currently hold `manifest`'s content under the tokens
    /// `token_of` gives, so the next autosave reads none of them (call after loading a project
    /// from a snapshot, or after a restore).
    pub fn seed(&mut self, manifest: &Manifest, token_of: impl Fn(&EntryPath) -> Option<Token>) {
        self.cache.bind(self.store.format().store_id);
        self.cache.seed(manifest, token_of);
    }

    /// Autosaves beyond the newest `keep_autosaves`, oldest first.
    fn beyond_retention(&self) -> Result<Vec<SnapshotId>> {
        let autosaves: Vec<SnapshotInfo> = self
            .store
            .snapshots()?
            .into_iter()
            .filter(|s| s.kind == SnapshotKind::Autosave)
            .collect();
        let excess = autosaves.len().saturating_sub(self.keep_autosaves);
        Ok(autosaves[..excess].iter().map(|s| s.id).collect())
    }

    /// After a committed save: removes the snapshots `doomed` names and collects their blobs,
    /// unless the save could not read some entries. Reports what it did not do, and never fails:
    /// the save stands.
    fn clean_up(
        &self,
        report: &mut SaveReport,
        doomed: impl FnOnce(&Self) -> Result<Vec<SnapshotId>>,
    ) {
        if !report.tree.errors.is_empty() {
            report.gc_skipped = Some(Skipped::EntryErrors {
                entries: report.tree.errors.len(),
            });
            return;
        }
        if let Err(e) = doomed(self).and_then(|ids| self.remove(&ids, report)) {
            report.gc_skipped = Some(Skipped::Failed(std::sync::Arc::new(e)));
        }
    }

    /// Deletes snapshots and collects their blobs; a GC that cannot run now is reported, not
    /// an error (the blobs go at the next one).
    pub(crate) fn remove(&self, ids: &[SnapshotId], report: &mut SaveReport) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.store.delete_snapshots(ids)?;
        report.removed.extend_from_slice(ids);
        // A complete snapshot record with no index row, left after this session's adoption,
        // is a snapshot the index lost that could not be brought back here (a process that
        // does not adopt committed after the loss): a sweep would make the loss permanent, so
        // it waits, reported, for `repair index` or an explicit GC. Incomplete ones (an
        // interrupted commit whose inline blobs never reached the index) are swept as before.
        match self
            .store
            .gc_holding_complete_records(GcOptions::default(), &Manifest::refs_of)
        {
            Ok(gc) => report.gc = Some(gc),
            Err(autosave_store::Error::Busy { .. }) => report.gc_skipped = Some(Skipped::Busy),
            Err(autosave_store::Error::GcRefused {
                reason: GcRefusal::UnindexedSnapshots { count, first },
            }) => report.gc_skipped = Some(Skipped::UnindexedRecords { count, first }),
            Err(autosave_store::Error::GcRefused { reason }) => {
                report.gc_skipped = Some(Skipped::Refused(reason));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Adopts, and forgets damaged blobs, unless done already or the store is still in use.
    fn adopt_if_pending(&mut self) -> Result<()> {
        if !self.adoption_pending {
            return Ok(());
        }
        let Some(ids) = adopt(&self.store)? else {
            return Ok(());
        };
        self.adopted.extend(ids);
        // ORDER: after adoption, so that a record whose blob file is gone is still brought
        // back (damaged, and mended by the next save that stores the blob's bytes) rather than
        // left unindexed for a GC to sweep.
        match self
            .store
            .forget_damaged_blobs(false, &autosave_store::Progress::none())
        {
            Ok(repair) => self.forgotten.extend(repair.forgotten),
            // Taken between the two: the blobs wait for the next save's check.
            Err(autosave_store::Error::Busy { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.adoption_pending = false;
        Ok(())
    }

    pub(crate) fn writable(&self) -> Result<()> {
        if self.claim.is_some() {
            Ok(())
        } else {
            Err(Error::ReadOnly)
        }
    }
}

impl SaveReport {
    pub(crate) fn new(snapshot: Option<SnapshotId>, tree: Report) -> Self {
        Self {
            snapshot,
            tree,
            removed: Vec::new(),
            gc: None,
            gc_skipped: None,
            duration: Duration::ZERO,
        }
    }
}

/// [`Store::adopt_unindexed`] with the tree's manifest decoder; `None` if another process
/// is using the store (its commit in progress must not be taken for a lost one).
fn adopt(store: &Store) -> Result<Option<Vec<SnapshotId>>> {
    match store.adopt_unindexed(&Manifest::refs_of) {
        Ok(ids) => Ok(Some(ids)),
        Err(autosave_store::Error::Busy { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
