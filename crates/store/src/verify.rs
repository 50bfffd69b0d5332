//! Verification: is every blob that a snapshot needs present, and (optionally) intact?

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::codec::ObjectKind;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::index::{self, BlobRow};
use crate::progress::Progress;
use crate::snapshot::SnapshotId;
use crate::store::Store;

/// What is wrong with one blob.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A snapshot references it but the index has no row.
    NotInIndex,
    /// The index has a row but the file is gone.
    Missing,
    /// The file's length differs from the index.
    WrongSize {
        /// Bytes the index expects.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// The bytes do not decode to the blob (found with `read_data`).
    Corrupt {
        /// Why.
        reason: String,
    },
    /// Reading failed for another reason (permissions, I/O error).
    Unreadable {
        /// The error.
        reason: String,
    },
}

/// One damaged blob and the snapshots that need it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damage {
    /// The blob.
    pub digest: Digest,
    /// What is wrong.
    pub problem: Problem,
    /// Snapshots that reference it.
    pub snapshots: Vec<SnapshotId>,
}

/// The outcome of [`Store::verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Snapshots examined.
    pub snapshots: u64,
    /// Distinct blobs examined.
    pub blobs_checked: u64,
    /// Bytes read and re-hashed (0 without `read_data`).
    pub bytes_read: u64,
    /// Every damaged blob.
    pub damaged: Vec<Damage>,
    /// Snapshots that cannot be read back intact, ascending.
    pub damaged_snapshots: Vec<SnapshotId>,
    /// Snapshot record files under `objects/` that the index has no row for, ascending: either
    /// snapshots the index lost (damage to its write-ahead log silently drops every commit after
    /// the damage), or commits interrupted after their record was written (or still in progress
    /// in another process). [`Store::rebuild_index`] (`autosave repair index`) brings back each
    /// one whose manifest is present; a GC deletes them. Not damage to any indexed snapshot, so
    /// [`VerifyReport::is_clean`] does not count them.
    pub unindexed_records: Vec<Digest>,
}

impl VerifyReport {
    /// Whether nothing is damaged.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
    }
}

impl Store {
    /// Checks that every blob referenced by a snapshot is present with the right size; with
    /// `read_data`, also reads and re-hashes each one.
    pub fn verify(&self, read_data: bool) -> Result<VerifyReport> {
        self.verify_with(read_data, &Progress::none())
    }

    /// Like [`Store::verify`], reporting blobs checked of the referenced blobs to `progress`,
    /// and with `read_data` their uncompressed bytes (a blob counts as done whatever its
    /// state; bytes stay 0 without `read_data`).
    pub fn verify_with(&self, read_data: bool, progress: &Progress) -> Result<VerifyReport> {
        let _lock = self.lock_shared()?;
        self.verify_locked(read_data, progress, true)
    }

    /// Forgets the index rows of the damaged blobs that a snapshot stored again would replace:
    /// data and manifests that are missing, of the wrong size or (found with `read_data`)
    /// corrupt. Returns the check it made first, and the blobs it forgot.
    ///
    /// A store deduplicates against its index rows, never against its files, so while such a
    /// row stays, every later snapshot of the same bytes references the damaged blob and is
    /// damaged too. Without the row, the next put of those bytes writes them anew, and every
    /// snapshot that references the digest, old or new, reads back intact again.
    ///
    /// The snapshots that need a forgotten blob stay damaged until its bytes are stored again:
    /// [`Store::verify`] then reports the blob as [`Problem::NotInIndex`]. Records are never
    /// forgotten (no snapshot is taken again with the same record), and neither are blobs that
    /// could not be read ([`Problem::Unreadable`]: a permission or I/O error says nothing about
    /// the bytes). The named caches go in the same transaction, so that a directory snapshot
    /// looks at its files again rather than trusting what its cache says the store holds.
    ///
    /// Takes the exclusive lock: [`Error::Busy`] if anyone uses the store.
    pub fn forget_damaged_blobs(
        &self,
        read_data: bool,
        progress: &Progress,
    ) -> Result<(VerifyReport, Vec<Digest>)> {
        let _lock = self.lock_exclusive()?;
        let report = self.verify_locked(read_data, progress, false)?;
        let records: BTreeSet<Digest> = index::snapshots(&self.conn())?
            .iter()
            .map(|s| s.record)
            .collect();
        let forgotten: Vec<Digest> = report
            .damaged
            .iter()
            .filter(|d| {
                matches!(
                    d.problem,
                    Problem::Missing | Problem::WrongSize { .. } | Problem::Corrupt { .. }
                ) && !records.contains(&d.digest)
            })
            .map(|d| d.digest)
            .collect();
        if forgotten.is_empty() {
            return Ok((report, forgotten));
        }
        let mut conn = self.conn_to_write()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(Error::index("begin"))?;
        for digest in &forgotten {
            index::delete_blob(&tx, digest)?;
        }
        index::clear_caches(&tx)?;
        // Every handle's cache of known digests (in this process or another) is dropped when
        // the generation moves, as after a GC: none may dedupe against a forgotten row.
        index::bump_gc_generation(&tx)?;
        tx.commit().map_err(Error::index("commit"))?;
        drop(conn);
        self.committed();
        Ok((report, forgotten))
    }

    /// The check, under a lock the caller holds. `unindexed`: also list the snapshot records
    /// without an index row ([`VerifyReport::unindexed_records`]; empty otherwise).
    fn verify_locked(
        &self,
        read_data: bool,
        progress: &Progress,
        unindexed: bool,
    ) -> Result<VerifyReport> {
        let (snapshots, records, users, presence) = {
            let mut conn = self.conn();
            // One read transaction: the snapshot list and the references must be of the same
            // moment, or a snapshot committed in between would have its record counted as data.
            let tx = conn
                .transaction()
                .map_err(Error::index("begin a read transaction"))?;
            let listed = index::snapshots(&tx)?;
            let records: BTreeSet<Digest> = listed.iter().map(|s| s.record).collect();
            let mut users: BTreeMap<Digest, Vec<SnapshotId>> = BTreeMap::new();
            for (id, digest) in index::all_references(&tx)? {
                users.entry(digest).or_default().push(id);
            }
            // Without reading data, one query gives every row's lengths (a query per blob
            // costs more than the `stat` of its file).
            let presence: HashMap<Digest, (u64, Option<u64>)> = match read_data {
                true => HashMap::new(),
                false => index::blob_presence(&tx)?
                    .into_iter()
                    .map(|(digest, stored, inline)| (digest, (stored, inline)))
                    .collect(),
            };
            tx.finish()
                .map_err(Error::index("end a read transaction"))?;
            (listed.len() as u64, records, users, presence)
        };
        let mut report = VerifyReport {
            snapshots,
            ..VerifyReport::default()
        };
        let sizes = self.sizes_for_progress(progress, read_data, &users)?;
        let meter = progress.start(users.len() as u64, sizes.values().sum());
        for (digest, mut ids) in users {
            report.blobs_checked += 1;
            let kind = if records.contains(&digest) {
                ObjectKind::Record
            } else {
                ObjectKind::Data
            };
            let problem = match read_data {
                true => self.check_blob(&digest, kind, read_data, &mut report.bytes_read)?,
                false => match presence.get(&digest) {
                    None => Some(Problem::NotInIndex),
                    Some(&(stored, inline)) => self.check_lengths(&digest, stored, inline),
                },
            };
            meter.advance(1, sizes.get(&digest).copied().unwrap_or(0));
            if let Some(problem) = problem {
                ids.sort();
                ids.dedup();
                report.damaged_snapshots.extend(&ids);
                report.damaged.push(Damage {
                    digest,
                    problem,
                    snapshots: ids,
                });
            }
        }
        report.damaged_snapshots.sort();
        report.damaged_snapshots.dedup();
        if unindexed {
            report.unindexed_records = self.unindexed_records()?;
        }
        Ok(report)
    }

    /// The snapshot record files under `objects/` that the index has no row for, ascending
    /// ([`VerifyReport::unindexed_records`]): snapshots the index lost, or commits interrupted
    /// (or, in another process, still in progress) after their record was written. Files are
    /// listed before the index is asked, so a commit that lands in between is not reported.
    pub fn unindexed_records(&self) -> Result<Vec<Digest>> {
        self.unindexed_records_among(|d| index::has_blob(&self.conn(), d))
    }

    /// [`Store::unindexed_records`], with `indexed` telling which digests have a row. Only a
    /// readable, intact record counts: anything else is left for GC, as before.
    pub(crate) fn unindexed_records_among(
        &self,
        indexed: impl Fn(&Digest) -> Result<bool>,
    ) -> Result<Vec<Digest>> {
        let mut found: Vec<Digest> = self
            .intact_strays(indexed)?
            .into_iter()
            .filter(|(_, (_, record))| record.is_some())
            .map(|(digest, _)| digest)
            .collect();
        found.sort();
        Ok(found)
    }

    /// The uncompressed size of each referenced blob that has a row, when progress counts
    /// bytes read; empty otherwise.
    fn sizes_for_progress(
        &self,
        progress: &Progress,
        read_data: bool,
        users: &BTreeMap<Digest, Vec<SnapshotId>>,
    ) -> Result<HashMap<Digest, u64>> {
        if !progress.is_active() || !read_data {
            return Ok(HashMap::new());
        }
        let rows = index::all_blobs(&self.conn())?;
        Ok(rows
            .into_iter()
            .filter(|(digest, ..)| users.contains_key(digest))
            .map(|(digest, size, ..)| (digest, size))
            .collect())
    }

    fn check_blob(
        &self,
        digest: &Digest,
        kind: ObjectKind,
        read_data: bool,
        read: &mut u64,
    ) -> Result<Option<Problem>> {
        let Some(row) = index::blob(&self.conn(), digest)? else {
            return Ok(Some(Problem::NotInIndex));
        };
        if let Some(problem) = self.check_presence(&row) {
            return Ok(Some(problem));
        }
        if !read_data {
            return Ok(None);
        }
        *read += row.size;
        match self.load_kind(&row) {
            // The bytes are right, but a rebuild of the index reads records by this header
            // field: a flipped kind would drop the blob or lose the snapshot.
            Ok((Some(found), _)) if found != kind => Ok(Some(Problem::Corrupt {
                reason: format!("header names object kind {found:?}, expected {kind:?}"),
            })),
            Ok(_) => Ok(None),
            Err(Error::Corrupt { reason, .. }) => Ok(Some(Problem::Corrupt { reason })),
            Err(Error::Missing { .. }) => Ok(Some(Problem::Missing)),
            Err(e @ Error::Io { .. }) => Ok(Some(Problem::Unreadable {
                reason: e.to_string(),
            })),
            Err(e) => Err(e),
        }
    }

    fn check_presence(&self, row: &BlobRow) -> Option<Problem> {
        let inline = row.inline.as_ref().map(|payload| payload.len() as u64);
        self.check_lengths(&row.digest, row.stored, inline)
    }

    /// Whether a blob whose row says `stored` bytes (and for an inline blob, whose payload has
    /// `inline` bytes) is there with that length.
    fn check_lengths(&self, digest: &Digest, stored: u64, inline: Option<u64>) -> Option<Problem> {
        let found = match inline {
            Some(len) => len,
            None => match self.inner.vfs.file_len(&self.blob_path(digest)) {
                Ok(Some(len)) => len,
                Ok(None) => return Some(Problem::Missing),
                Err(e) => {
                    return Some(Problem::Unreadable {
                        reason: e.to_string(),
                    });
                }
            },
        };
        (found != stored).then_some(Problem::WrongSize {
            expected: stored,
            found,
        })
    }
}
