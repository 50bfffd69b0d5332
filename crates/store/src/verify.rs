//! Verification: is every blob that a snapshot needs present, and (optionally) intact?

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::codec::{self, ObjectKind};
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
    /// A snapshot references it, but the index has no row and no intact file is at its name.
    NotInIndex,
    /// A snapshot references it and an intact file is at its name, but the index has no row
    /// for it (lost with a damaged index, or forgotten while the file was missing and put back
    /// since): [`Store::rebuild_index`] indexes the file again.
    FileNotInIndex,
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
    /// Whether it is the snapshot record of the snapshots listed (which no later snapshot
    /// writes again), rather than data or a manifest.
    pub record: bool,
}

/// What [`Store::forget_damaged_blobs`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobRepair {
    /// The check made first (without the listing of unindexed records).
    pub report: VerifyReport,
    /// Blobs whose index rows were forgotten, so that the next put of their bytes stores them
    /// again.
    pub forgotten: Vec<Digest>,
    /// Blob files written again with the right object kind in their header.
    pub rewritten: Vec<Digest>,
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

    /// Repairs what a store can of damaged blobs, so that they stop damaging later snapshots:
    ///
    /// - Forgets the index rows of data and manifests that are missing, of the wrong size or
    ///   (found with `read_data`) corrupt. A store deduplicates against its index rows, never
    ///   against its files, so while such a row stays, every later snapshot of the same bytes
    ///   references the damaged blob and is damaged too. Without the row, the next put of those
    ///   bytes writes them anew, and every snapshot that references the digest, old or new,
    ///   reads back intact again. Until then [`Store::verify`] reports the blob as
    ///   [`Problem::NotInIndex`].
    /// - Rewrites the header of a blob file whose bytes are intact but whose header names the
    ///   wrong object kind (found with `read_data`): a rebuild of the index reads records by
    ///   that field. The new file replaces the old one atomically (temp file, fsync, rename,
    ///   directory fsync).
    ///
    /// Snapshot records are never forgotten (no snapshot writes one again), and neither are
    /// blobs that could not be read ([`Problem::Unreadable`]: a permission or I/O error says
    /// nothing about the bytes). The named caches go in the transaction that forgets, so that a
    /// directory snapshot looks at its files again rather than trusting what its cache says
    /// the store holds. Files are never removed.
    ///
    /// Takes the exclusive lock: [`Error::Busy`] if anyone uses the store.
    pub fn forget_damaged_blobs(&self, read_data: bool, progress: &Progress) -> Result<BlobRepair> {
        let _lock = self.lock_exclusive()?;
        let report = self.verify_locked(read_data, progress, false)?;
        let mut forgotten = Vec::new();
        let mut rewritten = Vec::new();
        for damage in report.damaged.iter() {
            match &damage.problem {
                Problem::Corrupt { .. } if self.rewrite_kind(damage)? => {
                    rewritten.push(damage.digest);
                }
                Problem::Missing | Problem::WrongSize { .. } | Problem::Corrupt { .. }
                    if !damage.record =>
                {
                    forgotten.push(damage.digest);
                }
                _ => {}
            }
        }
        if !forgotten.is_empty() {
            let mut conn = self.conn_to_write()?;
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(Error::index("begin"))?;
            for digest in &forgotten {
                index::delete_blob(&tx, digest)?;
            }
            index::clear_caches(&tx)?;
            // Every handle's cache of known digests (in this process or another) is dropped
            // when the generation moves, as after a GC: none may dedupe against a forgotten
            // row.
            index::bump_gc_generation(&tx)?;
            tx.commit().map_err(Error::index("commit"))?;
            drop(conn);
            self.committed();
        }
        Ok(BlobRepair {
            report,
            forgotten,
            rewritten,
        })
    }

    /// If the blob file of `damage` holds the right bytes under a header that names the wrong
    /// object kind, writes it again with the right kind; whether it did.
    fn rewrite_kind(&self, damage: &Damage) -> Result<bool> {
        let Some(row) = index::blob(&self.conn(), &damage.digest)? else {
            return Ok(false);
        };
        let expected = if damage.record {
            ObjectKind::Record
        } else {
            ObjectKind::Data
        };
        if row.inline.is_some() {
            return Ok(false);
        }
        let vfs = &*self.inner.vfs;
        let path = self.blob_path(&row.digest);
        let Ok(file) = vfs.read(&path) else {
            return Ok(false);
        };
        // Only the kind may be wrong: the file's own codec and length must give back the bytes.
        let Ok(found) = codec::parse_header(&file) else {
            return Ok(false);
        };
        let intact = |bytes: Vec<u8>| self.digest_of(&bytes) == row.digest;
        if found.kind == expected
            || found.len != row.size
            || !codec::decode(found.codec, &file[codec::HEADER_LEN..], found.len).is_ok_and(intact)
        {
            return Ok(false);
        }
        let header = codec::header(found.codec, expected, found.len);
        let dir = path
            .parent()
            .expect("a blob file is in a fan-out directory");
        let temp = crate::vfs::write_temp(vfs, dir, &[&header, &file[codec::HEADER_LEN..]])?;
        // ORDER: the new file's bytes are durable before it replaces the old one, and its name
        // before this returns.
        let replaced = vfs
            .sync_file(&temp)
            .map_err(|e| Error::io("fsync", &temp, e))
            .and_then(|()| {
                vfs.rename(&temp, &path)
                    .map_err(|e| Error::io("rename", &path, e))
            });
        if let Err(e) = replaced {
            let _ = vfs.remove_file(&temp);
            return Err(e);
        }
        crate::vfs::sync_dir(vfs, dir)?;
        Ok(true)
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
                false => index::all_blobs(&tx)?
                    .into_iter()
                    .map(|(digest, _, stored, inline)| (digest, (stored, inline)))
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
                    None => Some(self.no_row(&digest)),
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
                    record: kind == ObjectKind::Record,
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
            return Ok(Some(self.no_row(digest)));
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

    /// The problem of a referenced blob without an index row: whether an intact file is at its
    /// name (read and re-hashed: a rare case, and a rebuild would leave a damaged file out).
    fn no_row(&self, digest: &Digest) -> Problem {
        let path = self.blob_path(digest);
        let name = digest.to_string();
        match crate::rebuild::examine(&*self.inner.vfs, &path, &name, self.format().hash) {
            Some(_) => Problem::FileNotInIndex,
            None => Problem::NotInIndex,
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
