//! Garbage collection: mark from the remaining snapshots, sweep the rest.
//!
//! Runs under the exclusive lock, so no batch is between its dedupe check and its commit.
//! Refuses to run when a referenced blob is missing (the store needs repair, not sweeping), when
//! no snapshot is left (it would delete everything), and, if asked to
//! ([`UnindexedRecords::Refuse`]), when a snapshot record file has no index row (the index may
//! have lost that snapshot, and sweeping would make the loss permanent). Row deletions are
//! committed before any file is unlinked, so a crash mid-sweep leaves only unreferenced files,
//! which the next GC removes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::ErrorKind;

use camino::Utf8PathBuf;

use crate::digest::Digest;
use crate::error::{Error, GcRefusal, Result};
use crate::index;
use crate::progress::{Meter, Progress};
use crate::rebuild::RefsOf;
use crate::seeded::{self, SeededBug};
use crate::store::Store;
use crate::vfs;

/// How to collect garbage.
#[derive(Clone, Debug, Default)]
pub struct GcOptions {
    /// Report what would be removed without removing it. Default `false`.
    pub dry_run: bool,
    /// Where to report blobs examined (referenced ones checked, unreferenced ones removed) of
    /// all blob rows; bytes are not counted. Default: nowhere.
    pub progress: Progress,
    /// What to do with snapshot records that have no index row. Default
    /// [`UnindexedRecords::Delete`].
    pub unindexed: UnindexedRecords,
    /// Collect even when no snapshot is left, deleting every blob, instead of refusing with
    /// [`GcRefusal::WouldDeleteEverything`] (an index that lost its snapshots looks the same
    /// as one whose snapshots were all deleted on purpose). Default `false`.
    pub allow_empty: bool,
}

/// What GC does with snapshot record files the index has no row for
/// ([`crate::VerifyReport::unindexed_records`]).
///
/// Such a record is a snapshot the index lost (damage to its write-ahead log makes SQLite drop
/// every later commit without an error) or a commit that was interrupted after its record was
/// written; nothing in the store tells the two apart. [`Store::rebuild_index`] brings each one
/// back whose manifest is intact; a sweep deletes it for good, with the blobs only it needed.
///
/// Interrupted commits are far more common (a host killed while it autosaves), and a GC that
/// refused after each of them would stop reclaiming space until someone rebuilt the index, so
/// the default sweeps them, as every file without a row. The command-line tool refuses by
/// default and says so (`autosave gc --discard-unindexed` sweeps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnindexedRecords {
    /// Sweep them with every other file that has no index row.
    #[default]
    Delete,
    /// Refuse to collect ([`GcRefusal::UnindexedSnapshots`]) while there are any.
    Refuse,
}

/// What garbage collection removed (or, in a dry run, would remove).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Blobs still referenced.
    pub blobs_kept: u64,
    /// Unreferenced blobs removed from the index (and their files).
    pub blobs_removed: u64,
    /// Bytes those blobs took on disk.
    pub bytes_freed: u64,
    /// Files with no index row (from interrupted writes) removed, temp files included.
    pub stray_files_removed: u64,
    /// Bytes of those files.
    pub stray_bytes_freed: u64,
}

/// One blob row as GC sees it.
struct Row {
    digest: Digest,
    stored: u64,
    inline: bool,
}

impl Store {
    /// Collects garbage with default options.
    pub fn gc(&self) -> Result<GcReport> {
        self.gc_with(GcOptions::default())
    }

    /// Removes blobs that no snapshot references, and files left by interrupted writes.
    ///
    /// Fails with [`Error::Busy`] if any other operation holds the store, and with
    /// [`Error::GcRefused`] in the two unsafe cases.
    pub fn gc_with(&self, options: GcOptions) -> Result<GcReport> {
        self.collect(options, None)
    }

    /// Like [`Store::gc_with`], except for the snapshot records that have no index row: those
    /// whose tree is complete (the ones [`Store::complete_unindexed_records`] lists, with
    /// `refs_of` decoding manifests) hold the collection back, refused with
    /// [`GcRefusal::UnindexedSnapshots`], and the others (interrupted commits whose inline
    /// blobs never reached the index) are swept. `options.unindexed` is not consulted.
    ///
    /// This is the GC a session runs after retention: one listing of `objects/` serves both
    /// the check and the sweep, under one exclusive lock, where
    /// [`Store::complete_unindexed_records`] followed by a GC lists it twice.
    pub fn gc_holding_complete_records(
        &self,
        options: GcOptions,
        refs_of: RefsOf<'_>,
    ) -> Result<GcReport> {
        self.collect(options, Some(refs_of))
    }

    fn collect(&self, options: GcOptions, hold_complete: Option<RefsOf<'_>>) -> Result<GcReport> {
        let _lock = self.lock_exclusive()?;
        let (rows, referenced) = {
            let conn = self.conn();
            let rows = index::all_blobs(&conn)?;
            let refs = index::all_references(&conn)?;
            (
                rows,
                refs.into_iter().map(|(_, d)| d).collect::<HashSet<_>>(),
            )
        };
        let rows: Vec<Row> = rows
            .into_iter()
            .map(|(digest, _, stored, inline)| Row {
                digest,
                stored,
                inline: inline.is_some(),
            })
            .collect();
        let meter = options.progress.start(rows.len() as u64, 0);
        self.refuse_if_unsafe(&rows, &referenced, options.allow_empty, &meter)?;
        // One listing serves the check for unindexed records and the sweep: under the exclusive
        // lock no batch writes a file, so none appears in between.
        let listing = self.list_sweep_dirs()?;
        let held = match (hold_complete, options.unindexed) {
            (None, UnindexedRecords::Delete) => Vec::new(),
            (None, UnindexedRecords::Refuse) => {
                let indexed: HashSet<Digest> = rows.iter().map(|r| r.digest).collect();
                let strays = self.intact_strays_in(&listing, |d| Ok(indexed.contains(d)))?;
                let mut records: Vec<Digest> = strays
                    .into_iter()
                    .filter(|(_, (_, record))| record.is_some())
                    .map(|(digest, _)| digest)
                    .collect();
                records.sort();
                records
            }
            (Some(refs_of), _) => {
                let indexed: HashSet<Digest> = rows.iter().map(|r| r.digest).collect();
                let strays = self.intact_strays_in(&listing, |d| Ok(indexed.contains(d)))?;
                self.complete_strays(refs_of, &strays, &indexed, i64::MIN)?
                    .into_iter()
                    .map(|complete| complete.record)
                    .collect()
            }
        };
        if let Some(&first) = held.first() {
            return Err(Error::GcRefused {
                reason: GcRefusal::UnindexedSnapshots {
                    count: held.len(),
                    first,
                },
            });
        }
        let (keep, doomed): (Vec<Row>, Vec<Row>) = rows
            .into_iter()
            .partition(|r| referenced.contains(&r.digest));
        let mut report = GcReport {
            blobs_kept: keep.len() as u64,
            blobs_removed: doomed.len() as u64,
            bytes_freed: doomed.iter().map(|r| r.stored).sum(),
            ..GcReport::default()
        };
        let files = |rows: &[Row]| -> HashSet<String> {
            rows.iter()
                .filter(|r| !r.inline)
                .map(|r| r.digest.to_string())
                .collect()
        };
        let (kept, freed) = (files(&keep), files(&doomed));
        if seeded::active(SeededBug::UnlinkBeforeGcCommit) && !options.dry_run {
            self.sweep(&listing, &kept, &freed, false, &mut report, &meter)?;
        }
        if !options.dry_run {
            self.delete_rows(&doomed)?;
        }
        meter.advance(doomed.iter().filter(|r| r.inline).count() as u64, 0);
        self.sweep(
            &listing,
            &kept,
            &freed,
            options.dry_run,
            &mut report,
            &meter,
        )?;
        if !options.dry_run {
            self.clear_swept()?;
        }
        // Files of removed rows that were already gone count as done too.
        meter.finish();
        Ok(report)
    }

    fn refuse_if_unsafe(
        &self,
        rows: &[Row],
        referenced: &HashSet<Digest>,
        allow_empty: bool,
        meter: &Meter<'_>,
    ) -> Result<()> {
        let by_digest: HashMap<Digest, &Row> = rows.iter().map(|r| (r.digest, r)).collect();
        let present = |d: &Digest| {
            by_digest.get(d).is_some_and(|r| {
                let present = self.row_is_present(r);
                meter.advance(1, 0);
                present
            })
        };
        let mut missing = referenced
            .iter()
            .filter(|d| !present(d))
            .copied()
            .collect::<Vec<_>>();
        missing.sort();
        if let Some(&first) = missing.first() {
            return Err(Error::GcRefused {
                reason: GcRefusal::MissingBlobs {
                    count: missing.len(),
                    first,
                },
            });
        }
        if referenced.is_empty() && !rows.is_empty() && !allow_empty {
            return Err(Error::GcRefused {
                reason: GcRefusal::WouldDeleteEverything {
                    blobs: rows.len() as u64,
                },
            });
        }
        Ok(())
    }

    fn row_is_present(&self, row: &Row) -> bool {
        row.inline
            || self
                .inner
                .vfs
                .file_len(&self.blob_path(&row.digest))
                .is_ok_and(|len| len == Some(row.stored))
    }

    fn delete_rows(&self, doomed: &[Row]) -> Result<()> {
        let mut conn = self.conn_to_write()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(Error::index("begin"))?;
        for row in doomed {
            index::delete_blob(&tx, &row.digest)?;
        }
        // Until the sweep is done, its files are known as GC's own: a crash in between leaves
        // files without rows that no one may take for a snapshot the index lost.
        let files: Vec<Digest> = doomed
            .iter()
            .filter(|r| !r.inline)
            .map(|r| r.digest)
            .collect();
        index::add_swept(&tx, &files)?;
        index::bump_gc_generation(&tx)?;
        // ORDER: the deletions are durable before any file is unlinked, so a crash in the sweep
        // never leaves a row pointing at a removed file.
        tx.commit().map_err(Error::index("commit"))?;
        self.committed();
        Ok(())
    }

    /// Forgets the swept marks once the sweep has removed their files (and synced their
    /// directories).
    fn clear_swept(&self) -> Result<()> {
        let mut conn = self.conn_to_write()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(Error::index("begin"))?;
        if index::clear_swept(&tx)? {
            tx.commit().map_err(Error::index("commit"))?;
            drop(conn);
            self.committed();
        }
        Ok(())
    }

    /// Removes every file under `objects/` and `tmp/` that is not a kept blob file, and temp
    /// files in the store directory itself (left by a crash while `FORMAT` was written); `freed`
    /// are the files of the rows just deleted, already counted in the report.
    fn sweep(
        &self,
        listing: &Listing,
        kept: &HashSet<String>,
        freed: &HashSet<String>,
        dry_run: bool,
        report: &mut GcReport,
        meter: &Meter<'_>,
    ) -> Result<()> {
        let vfs = &*self.inner.vfs;
        let mut touched = BTreeSet::new();
        for (dir, names) in listing.fanout.iter().chain(&listing.others) {
            let only_temps = dir == self.root();
            for name in names {
                if kept.contains(name) || (only_temps && !name.starts_with(vfs::TEMP_PREFIX)) {
                    continue;
                }
                let path = dir.join(name);
                let of_a_row = freed.contains(name);
                if !of_a_row {
                    report.stray_files_removed += 1;
                    report.stray_bytes_freed += vfs.file_len(&path).ok().flatten().unwrap_or(0);
                }
                if !dry_run {
                    remove(vfs, &path)?;
                    touched.insert(dir.clone());
                }
                if of_a_row {
                    meter.advance(1, 0);
                }
            }
        }
        vfs::sync_dirs(vfs, touched.iter().map(Utf8PathBuf::as_path))?;
        Ok(())
    }

    /// The fan-out directories under `objects/` (two hex digits each).
    pub(crate) fn fanout_dirs(&self) -> Result<Vec<Utf8PathBuf>> {
        let objects = self.root().join("objects");
        Ok(list(&*self.inner.vfs, &objects)?
            .into_iter()
            .filter(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|n| objects.join(n))
            .collect())
    }

    /// The names in the fan-out directories (for [`Store::intact_strays_in`]).
    pub(crate) fn list_fanout(&self) -> Result<Listing> {
        let vfs = &*self.inner.vfs;
        let mut fanout = Vec::new();
        for dir in self.fanout_dirs()? {
            let names = list(vfs, &dir)?;
            fanout.push((dir, names));
        }
        Ok(Listing {
            fanout,
            others: Vec::new(),
        })
    }

    /// The names in every directory a GC sweeps: the fan-out directories, `tmp/`, and the
    /// store directory itself (for temp files only).
    fn list_sweep_dirs(&self) -> Result<Listing> {
        let vfs = &*self.inner.vfs;
        let mut listing = self.list_fanout()?;
        for dir in [self.root().join("tmp"), self.root().to_owned()] {
            listing.others.push((dir.clone(), list(vfs, &dir)?));
        }
        Ok(listing)
    }
}

/// The names found in directories of the store, each with its directory.
pub(crate) struct Listing {
    /// The fan-out directories under `objects/`.
    pub(crate) fanout: Vec<(Utf8PathBuf, Vec<String>)>,
    /// Other directories (`tmp/`, the store directory).
    pub(crate) others: Vec<(Utf8PathBuf, Vec<String>)>,
}

/// The names in `dir`; none if it does not exist.
pub(crate) fn list(vfs: &dyn vfs::Vfs, dir: &camino::Utf8Path) -> Result<Vec<String>> {
    match vfs.list_dir(dir) {
        Ok(names) => Ok(names),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io("list", dir, e)),
    }
}

fn remove(vfs: &dyn vfs::Vfs, path: &camino::Utf8Path) -> Result<()> {
    match vfs.remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}
