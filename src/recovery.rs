//! Recovery: is there an autosave worth offering, and restoring or discarding it.

use autosave_store::{SnapshotId, SnapshotInfo, SnapshotKind};
use autosave_tree::{Change, EntryPath, Manifest, Meta, diff, read_content, snapshot_manifest};

use crate::error::Result;
use crate::session::{SaveReport, Session};

/// An autosave newer than the last explicit save, and different from it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Recovery {
    /// The newest autosave.
    pub snapshot: SnapshotInfo,
    /// The newest explicit save, if there is one.
    pub baseline: Option<SnapshotInfo>,
    /// Entries in the autosave.
    pub entries: usize,
    /// Entries added, removed or modified since the baseline.
    pub changed_entries: usize,
    /// Content bytes of the added and modified entries.
    pub changed_bytes: u64,
    /// Older autosaves, also newer than the baseline, newest first.
    pub older: Vec<SnapshotInfo>,
    /// Set when an autosave newer than the baseline is damaged: which ones and why. The offered
    /// `snapshot` is then the newest one that read back intact, or, if none did, the newest
    /// (and restoring it will fail).
    pub problem: Option<String>,
    /// The autosaves newer than the offered one that did not read back intact (named in
    /// `problem`), newest first. [`Session::discard`] removes them too.
    pub damaged: Vec<SnapshotId>,
}

/// One entry of a restored tree.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RestoredEntry {
    /// Where it sits.
    pub path: EntryPath,
    /// The host's kind string.
    pub kind: String,
    /// Host metadata.
    pub meta: Meta,
    /// The content, verified.
    pub content: Vec<u8>,
}

/// A restored tree: every entry with its content, read and verified.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Restored {
    /// The snapshot it came from.
    pub snapshot: SnapshotId,
    /// Its manifest (for [`Session::seed`]).
    pub manifest: Manifest,
    /// The entries, in path order.
    pub entries: Vec<RestoredEntry>,
}

impl Session {
    /// Whether there is something to recover: an autosave newer than the newest explicit save
    /// whose tree differs from it. `None` after a clean exit, and after a crash when nothing had
    /// changed since the last save.
    ///
    /// Each candidate is read back in full (every blob verified) before it is offered, newest
    /// first: a damaged autosave is skipped, and named in [`Recovery::problem`].
    pub fn recovery(&self) -> Result<Option<Recovery>> {
        let snapshots = self.store().snapshots()?;
        let baseline = snapshots
            .iter()
            .rev()
            .find(|s| s.kind == SnapshotKind::Explicit)
            .cloned();
        let floor = baseline.as_ref().map_or(SnapshotId(0), |b| b.id);
        let mut newer: Vec<SnapshotInfo> = snapshots
            .into_iter()
            .rev()
            .filter(|s| s.kind == SnapshotKind::Autosave && s.id > floor)
            .collect();
        if newer.is_empty() {
            return Ok(None);
        }
        // The newest autosave that reads back intact; newer damaged ones are named in `problem`.
        let mut damaged = Vec::new();
        let mut damaged_ids = Vec::new();
        let intact = newer.iter().position(|s| match self.check_intact(s.id) {
            Ok(()) => {
                // Its tree reads back; a damaged record (the snapshot's own metadata, also kept
                // in the index) does not stop it being offered, but is said.
                if let Err(e) = self.check_record(s) {
                    damaged.push(format!(
                        "autosave {} has a damaged snapshot record ({e}); its tree reads back intact",
                        s.id
                    ));
                }
                true
            }
            Err(e) => {
                damaged.push(format!("autosave {} is damaged ({e})", s.id));
                damaged_ids.push(s.id);
                false
            }
        });
        let (snapshot, older) = match intact {
            Some(i) => {
                let older = newer.split_off(i + 1);
                (newer.swap_remove(i), older)
            }
            None => {
                let snapshot = newer.remove(0);
                (snapshot, newer)
            }
        };
        if damaged.is_empty()
            && baseline
                .as_ref()
                .is_some_and(|b| b.manifest == snapshot.manifest)
        {
            return Ok(None);
        }
        let mut recovery = self.describe(snapshot, baseline, older);
        // Without an intact one, the offered snapshot and the older ones are all damaged; only
        // those newer than the offered one go here.
        damaged_ids.retain(|&id| id > recovery.snapshot.id);
        recovery.damaged = damaged_ids;
        if !damaged.is_empty() {
            let outcome = match intact {
                Some(_) => format!(
                    "offering autosave {}, the newest intact one",
                    recovery.snapshot.id
                ),
                None => "no autosave newer than the last save is intact".to_owned(),
            };
            let mut problem = damaged.join("; ");
            problem.push_str("; ");
            problem.push_str(&outcome);
            if let Some(earlier) = recovery.problem.take() {
                problem.push_str("; ");
                problem.push_str(&earlier);
            }
            recovery.problem = Some(problem);
        }
        Ok(Some(recovery))
    }

    /// Reads every blob of snapshot `id` (each verified by its digest), one at a time.
    fn check_intact(&self, id: SnapshotId) -> Result<()> {
        let manifest = snapshot_manifest(self.store(), id)?;
        let reader = self.store().reader()?;
        for digest in manifest.blobs() {
            if reader.get(&digest)?.is_none() {
                return Err(autosave_tree::Error::MissingBlob { digest }.into());
            }
        }
        Ok(())
    }

    /// Reads the snapshot's record blob back (verified by its digest).
    fn check_record(&self, s: &SnapshotInfo) -> Result<()> {
        match self.store().get(&s.record)? {
            Some(_) => Ok(()),
            None => Err(autosave_tree::Error::MissingBlob { digest: s.record }.into()),
        }
    }

    fn describe(
        &self,
        snapshot: SnapshotInfo,
        baseline: Option<SnapshotInfo>,
        older: Vec<SnapshotInfo>,
    ) -> Recovery {
        let mut recovery = Recovery {
            snapshot,
            baseline,
            entries: 0,
            changed_entries: 0,
            changed_bytes: 0,
            older,
            problem: None,
            damaged: Vec::new(),
        };
        match self.changes(&recovery) {
            Ok((entries, changes)) => {
                recovery.entries = entries;
                recovery.changed_entries = changes.len();
                recovery.changed_bytes = changes.iter().map(changed_bytes).sum();
            }
            Err(e) => recovery.problem = Some(e.to_string()),
        }
        recovery
    }

    fn changes(&self, r: &Recovery) -> Result<(usize, Vec<Change>)> {
        let current = snapshot_manifest(self.store(), r.snapshot.id)?;
        let base = match &r.baseline {
            Some(b) => snapshot_manifest(self.store(), b.id)?,
            None => Manifest::default(),
        };
        Ok((current.entries().len(), diff(&base, &current)))
    }

    /// Reads snapshot `id` back, every entry with its verified content. Fails loudly (with the
    /// store's reason) if anything cannot be read: it never falls back to another snapshot.
    ///
    /// The snapshot is kept: it stays recoverable until the restored state has itself been
    /// autosaved or saved.
    pub fn restore(&self, id: SnapshotId) -> Result<Restored> {
        let manifest = snapshot_manifest(self.store(), id)?;
        let mut entries = Vec::with_capacity(manifest.entries().len());
        for e in manifest.entries() {
            entries.push(RestoredEntry {
                path: e.path.clone(),
                kind: e.kind.clone(),
                meta: Meta::from_json(&e.meta).map_err(|m| autosave_tree::Error::BadMeta {
                    reason: m.to_string(),
                })?,
                content: read_content(self.store(), &e.content)?,
            });
        }
        Ok(Restored {
            snapshot: id,
            manifest,
            entries,
        })
    }

    /// Throws away what `recovery` offered: the autosaves newer than its baseline, damaged ones
    /// included (so the same question is not asked again).
    pub fn discard(&mut self, recovery: &Recovery) -> Result<SaveReport> {
        self.writable()?;
        let mut ids: Vec<SnapshotId> = recovery.older.iter().map(|s| s.id).collect();
        ids.push(recovery.snapshot.id);
        ids.extend_from_slice(&recovery.damaged);
        ids.sort_unstable();
        let mut report = SaveReport::new(None, autosave_tree::Report::default());
        self.remove(&ids, &mut report)?;
        Ok(report)
    }
}

fn changed_bytes(c: &Change) -> u64 {
    match c {
        Change::Added { len, .. } => *len,
        Change::Modified { new_len, .. } => *new_len,
        Change::Removed { .. } => 0,
    }
}
