//! Rebuilding a lost or damaged index from the store's files.
//!
//! Every snapshot commit also writes a *snapshot record* file, and manifests are files too, so
//! `objects/` alone names every snapshot and the blobs its manifest needs. Inline blobs live only
//! in the index: those the old index can still produce (verified) are carried over; the rest are
//! lost, and `verify` then names the snapshots that needed them. Snapshots are renumbered in
//! creation order, without parents (records do not know their old ids).

use std::collections::BTreeMap;

use camino::Utf8Path;
use rusqlite::{Connection, OpenFlags};

use crate::codec::{self, Codec, ObjectKind};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::index::{self, BlobRow};
use crate::lock;
use crate::snapshot::{NewSnapshot, RecordV1};
use crate::store::{Options, Store};
use crate::vfs;

/// Given a manifest's bytes, the blobs it references; `None` if they do not decode.
pub type RefsOf<'a> = &'a dyn Fn(&[u8]) -> Option<Vec<Digest>>;

/// What [`Store::rebuild_index`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RebuildReport {
    /// Snapshots recovered.
    pub snapshots: u64,
    /// Snapshot records whose manifest is missing, damaged or undecodable (not recovered).
    pub lost_snapshots: u64,
    /// Blob files that decode to their name.
    pub blob_files: u64,
    /// Inline blobs carried over from the old index.
    pub inline_blobs: u64,
    /// Files under `objects/` that are damaged or not blobs (left in place for inspection;
    /// the next GC removes them).
    pub damaged_files: u64,
}

/// A stray snapshot record whose tree is all there: the snapshot it makes, and every digest it
/// needs (its blobs, manifest and record).
pub(crate) struct CompleteRecord {
    pub(crate) record: Digest,
    snapshot: NewSnapshot,
    needs: Vec<Digest>,
}

struct Found {
    rows: Vec<BlobRow>,
    records: Vec<(Digest, RecordV1)>,
    /// Records the old index marks as given up (see `index::add_swept`).
    given_up: Vec<Digest>,
    damaged: u64,
}

impl Store {
    /// Rebuilds `index.sqlite` of the store at `path` from `objects/` (and whatever inline blobs
    /// the old index still holds intact), then opens the store.
    ///
    /// Fails with [`Error::Busy`] at once if any handle has the store open, in this process or
    /// another, even an idle one: such a handle would go on reading and committing into the
    /// index this replaces, and its commits would be lost. Handles opened meanwhile wait for
    /// the rebuild to finish.
    pub fn rebuild_index(
        path: impl AsRef<Utf8Path>,
        options: Options,
        refs_of: RefsOf<'_>,
    ) -> Result<(Self, RebuildReport)> {
        let root = path.as_ref();
        let format =
            crate::store::read_format(&*options.vfs, root)?.ok_or_else(|| Error::NoStore {
                path: root.to_owned(),
            })?;
        // ORDER: `OPEN` first: no handle has the old index open, and none opens it from now on.
        let _open = lock::try_exclusive(&root.join("OPEN"))?;
        let _lock = lock::try_exclusive(&root.join("LOCK"))?;
        let index_path = root.join("index.sqlite");
        let inline = salvage_inline(&index_path, format.hash);
        let swept = salvage_swept(&index_path);
        let mut found = scan_objects(&options, root, format.hash)?;
        // Records of snapshots deleted, or being collected by a GC when it stopped, stay
        // deleted, and stay marked in the new index (so that a second rebuild agrees).
        found.given_up = found
            .records
            .iter()
            .map(|(digest, _)| *digest)
            .filter(|digest| swept.contains(digest))
            .collect();
        found.records.retain(|(digest, _)| !swept.contains(digest));
        index::remove_files(&index_path)?;
        let mut conn = index::open(&index_path, true, options.busy_timeout)?;
        // ORDER: the new index's and its WAL's names are durable before anything is committed
        // into them (the old index, which held the rescued inline blobs, is gone already).
        vfs::sync_dir(&*options.vfs, root)?;
        let durable = index::commits_are_durable(&conn)?;
        let mut report = RebuildReport {
            blob_files: found.rows.len() as u64,
            inline_blobs: inline.len() as u64,
            damaged_files: found.damaged,
            ..RebuildReport::default()
        };
        fill(
            &mut conn,
            &*options.vfs,
            root,
            &found,
            &inline,
            refs_of,
            &mut report,
        )?;
        options.vfs.after_commit(&index_path, durable);
        drop(conn);
        drop(_lock);
        drop(_open);
        Ok((Self::open_with(root, options)?, report))
    }
}

/// The files the old index marks as given up, as far as it can still tell.
fn salvage_swept(path: &Utf8Path) -> std::collections::HashSet<Digest> {
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return std::collections::HashSet::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT digest FROM swept") else {
        return std::collections::HashSet::new();
    };
    let Ok(rows) = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)) else {
        return std::collections::HashSet::new();
    };
    rows.flatten()
        .filter_map(|raw| Digest::from_bytes(&raw))
        .collect()
}

/// Inline blobs the old index can still give, each verified against its digest.
fn salvage_inline(path: &Utf8Path, algo: crate::HashAlgo) -> Vec<BlobRow> {
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let Ok(mut stmt) =
        conn.prepare("SELECT digest, size, codec, data FROM blobs WHERE data IS NOT NULL")
    else {
        return Vec::new();
    };
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Vec<u8>>(3)?,
        ))
    });
    let Ok(rows) = rows else { return Vec::new() };
    rows.flatten()
        .filter_map(|(raw, size, codec, data)| {
            let digest = Digest::from_bytes(&raw)?;
            let codec = Codec::from_u8(u8::try_from(codec).ok()?)?;
            let size = u64::try_from(size).ok()?;
            let bytes = codec::decode(codec, &data, size).ok()?;
            (algo.hash(&bytes) == digest).then_some(BlobRow {
                digest,
                size,
                stored: data.len() as u64,
                codec,
                inline: Some(data),
            })
        })
        .collect()
}

/// Every blob file under `objects/` that decodes to its name, and the snapshot records.
fn scan_objects(options: &Options, root: &Utf8Path, algo: crate::HashAlgo) -> Result<Found> {
    let vfs = &*options.vfs;
    let objects = root.join("objects");
    let mut found = Found {
        rows: Vec::new(),
        records: Vec::new(),
        given_up: Vec::new(),
        damaged: 0,
    };
    let dirs = vfs
        .list_dir(&objects)
        .map_err(|e| Error::io("list", &objects, e))?;
    for dir in dirs.iter().filter(|d| d.len() == 2) {
        let names = vfs
            .list_dir(&objects.join(dir))
            .map_err(|e| Error::io("list", objects.join(dir), e))?;
        for name in names
            .iter()
            .filter(|n| !n.starts_with(crate::vfs::TEMP_PREFIX))
        {
            let path = objects.join(dir).join(name);
            match examine(vfs, &path, name, algo) {
                Some((row, record)) => {
                    if let Some(record) = record {
                        found.records.push((row.digest, record));
                    }
                    found.rows.push(row);
                }
                None => found.damaged += 1,
            }
        }
    }
    Ok(found)
}

/// A blob file's row (and, for a snapshot record, its content), or `None` if it is damaged.
pub(crate) fn examine(
    vfs: &dyn crate::Vfs,
    path: &Utf8Path,
    name: &str,
    algo: crate::HashAlgo,
) -> Option<(BlobRow, Option<RecordV1>)> {
    let digest: Digest = name.parse().ok()?;
    let file = vfs.read(path).ok()?;
    let stored = file.len() as u64;
    let (header, bytes) = codec::decode_file(file).ok()?;
    if algo.hash(&bytes) != digest {
        return None;
    }
    let record = match header.kind {
        ObjectKind::Record => Some(postcard::from_bytes::<RecordV1>(&bytes).ok()?),
        ObjectKind::Data => None,
    };
    let row = BlobRow {
        digest,
        size: header.len,
        stored,
        codec: header.codec,
        inline: None,
    };
    Some((row, record))
}

/// Writes the rows and the recoverable snapshots in one transaction.
fn fill(
    conn: &mut Connection,
    vfs: &dyn crate::Vfs,
    root: &Utf8Path,
    found: &Found,
    inline: &[BlobRow],
    refs_of: RefsOf<'_>,
    report: &mut RebuildReport,
) -> Result<()> {
    let manifests: BTreeMap<Digest, &BlobRow> = found.rows.iter().map(|r| (r.digest, r)).collect();
    let mut records: Vec<&(Digest, RecordV1)> = found.records.iter().collect();
    records.sort_by_key(|(digest, r)| (r.created_ns, *digest));
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(Error::index("begin"))?;
    for row in found.rows.iter().chain(inline) {
        index::insert_blob(&tx, row)?;
    }
    for (digest, record) in records {
        let refs = manifests
            .get(&record.manifest)
            .and_then(|row| read_blob_file(vfs, root, row))
            .and_then(|bytes| refs_of(&bytes));
        let Some(refs) = refs else {
            report.lost_snapshots += 1;
            continue;
        };
        index::insert_snapshot(&tx, &record.snapshot(refs), digest)?;
        report.snapshots += 1;
    }
    index::add_swept(&tx, &found.given_up)?;
    index::bump_gc_generation(&tx)?;
    tx.commit().map_err(Error::index("commit"))
}

fn read_blob_file(vfs: &dyn crate::Vfs, root: &Utf8Path, row: &BlobRow) -> Option<Vec<u8>> {
    let hex = row.digest.to_string();
    let file = vfs
        .read(&root.join("objects").join(&hex[..2]).join(&hex))
        .ok()?;
    codec::decode_file(file).ok().map(|(_, bytes)| bytes)
}

impl Store {
    /// Brings back, as new snapshots, the snapshot records that have no index row and are newer
    /// than every snapshot the index lists, when every blob they need is there and intact.
    ///
    /// Such a record is a snapshot the index lost (damage to its write-ahead log makes SQLite
    /// drop every later commit without an error) or a commit interrupted after its blobs and
    /// record were written; either way its tree is complete, and the newest state the store
    /// holds. A session adopts them when it opens, before its first commit makes them older
    /// than the newest listed snapshot (older ones are left for [`Store::rebuild_index`], and a
    /// default GC sweeps them). The new snapshots get ids after the existing ones, in creation
    /// order, without parents; existing snapshots keep their ids.
    ///
    /// Each file the new rows point at is fsynced, with its directory, before the one
    /// transaction that adds the rows, as in a commit. Takes the exclusive lock: [`Error::Busy`]
    /// if anyone uses the store (a commit in progress holds it shared). Returns the new ids.
    pub fn adopt_unindexed(&self, refs_of: RefsOf<'_>) -> Result<Vec<crate::SnapshotId>> {
        let _lock = self.lock_exclusive()?;
        let (indexed, newest) = {
            let conn = self.conn();
            let indexed: std::collections::HashSet<Digest> = index::all_blobs(&conn)?
                .into_iter()
                .map(|(digest, ..)| digest)
                .collect();
            let newest = index::snapshots(&conn)?
                .iter()
                .map(|s| s.created_ns)
                .max()
                .unwrap_or(i64::MIN);
            (indexed, newest)
        };
        let strays = self.intact_strays(|d| Ok(indexed.contains(d)))?;
        let mut adopted = Vec::new();
        let mut rows: BTreeMap<Digest, &BlobRow> = BTreeMap::new();
        for complete in self.complete_strays(refs_of, &strays, &indexed, newest)? {
            for d in &complete.needs {
                if let Some((row, _)) = strays.get(d) {
                    rows.insert(*d, row);
                }
            }
            adopted.push((complete.record, complete.snapshot));
        }
        if adopted.is_empty() {
            return Ok(Vec::new());
        }
        // ORDER: as in a commit, every file a new row points at is durable, name included,
        // before the transaction that adds the row.
        let vfs = &*self.inner.vfs;
        let paths: Vec<camino::Utf8PathBuf> = rows.keys().map(|d| self.blob_path(d)).collect();
        let mut dirs = std::collections::BTreeSet::new();
        for path in &paths {
            vfs.sync_file(path)
                .map_err(|e| Error::io("fsync", path.clone(), e))?;
            if let Some(dir) = path.parent() {
                dirs.insert(dir.to_owned());
            }
        }
        dirs.insert(self.root().join("objects"));
        crate::vfs::sync_dirs(vfs, dirs.iter().map(camino::Utf8PathBuf::as_path))?;
        let ids = {
            let mut conn = self.conn_to_write()?;
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(Error::index("begin"))?;
            for row in rows.values() {
                index::insert_blob(&tx, row)?;
            }
            let mut ids = Vec::with_capacity(adopted.len());
            for (record, snapshot) in &adopted {
                ids.push(index::insert_snapshot(&tx, snapshot, record)?);
            }
            vfs.before_commit(&paths)
                .map_err(|e| Error::io("commit barrier", self.root(), e))?;
            tx.commit().map_err(Error::index("commit"))?;
            ids
        };
        self.committed();
        let mut known = self.known();
        for digest in rows.keys() {
            known.insert(*digest);
        }
        Ok(ids)
    }

    /// Snapshot records with no index row whose manifest and every blob are there and intact:
    /// snapshots the index lost, or commits interrupted after their record was written, that
    /// [`Store::rebuild_index`] would bring back whole. [`Store::adopt_unindexed`] brings back
    /// those newer than every listed snapshot; the others a GC that deletes unindexed records
    /// would lose for good. Sorted by creation time.
    pub fn complete_unindexed_records(&self, refs_of: RefsOf<'_>) -> Result<Vec<Digest>> {
        let _lock = self.lock_shared()?;
        let indexed: std::collections::HashSet<Digest> = index::all_blobs(&self.conn())?
            .into_iter()
            .map(|(digest, ..)| digest)
            .collect();
        let strays = self.intact_strays(|d| Ok(indexed.contains(d)))?;
        Ok(self
            .complete_strays(refs_of, &strays, &indexed, i64::MIN)?
            .into_iter()
            .map(|c| c.record)
            .collect())
    }

    /// The stray records created after `after` (ns since the epoch) whose manifest decodes with
    /// `refs_of` and whose every blob is indexed or among `strays`, oldest first.
    pub(crate) fn complete_strays(
        &self,
        refs_of: RefsOf<'_>,
        strays: &std::collections::HashMap<Digest, (BlobRow, Option<RecordV1>)>,
        indexed: &std::collections::HashSet<Digest>,
        after: i64,
    ) -> Result<Vec<CompleteRecord>> {
        let mut records: Vec<(Digest, &RecordV1)> = strays
            .iter()
            .filter_map(|(d, (_, r))| r.as_ref().map(|r| (*d, r)))
            .filter(|(_, r)| r.created_ns > after)
            .collect();
        records.sort_by_key(|(digest, r)| (r.created_ns, *digest));
        let mut complete = Vec::new();
        for (digest, record) in records {
            let manifest = match strays.get(&record.manifest) {
                Some((row, _)) => read_blob_file(&*self.inner.vfs, self.root(), row),
                None => index::blob(&self.conn(), &record.manifest)?
                    .and_then(|row| self.load(&row).ok()),
            };
            let Some(refs) = manifest.and_then(|bytes| refs_of(&bytes)) else {
                continue;
            };
            let needs: Vec<Digest> = refs
                .iter()
                .copied()
                .chain([record.manifest, digest])
                .collect();
            if !needs
                .iter()
                .all(|d| indexed.contains(d) || strays.contains_key(d))
            {
                continue;
            }
            complete.push(CompleteRecord {
                record: digest,
                snapshot: record.snapshot(refs),
                needs,
            });
        }
        Ok(complete)
    }

    /// The blob files under `objects/` without an index row (`indexed` tells which digests
    /// have one) that decode to their name, with their rows and, for snapshot records, their
    /// content (none for the record of a snapshot a GC is collecting). Each file is listed before `indexed` is asked about it, so a row committed in
    /// between hides it.
    pub(crate) fn intact_strays(
        &self,
        indexed: impl Fn(&Digest) -> Result<bool>,
    ) -> Result<std::collections::HashMap<Digest, (BlobRow, Option<RecordV1>)>> {
        self.intact_strays_in(&self.list_fanout()?, indexed)
    }

    /// [`Store::intact_strays`] among the files of a listing made before.
    pub(crate) fn intact_strays_in(
        &self,
        listing: &crate::gc::Listing,
        indexed: impl Fn(&Digest) -> Result<bool>,
    ) -> Result<std::collections::HashMap<Digest, (BlobRow, Option<RecordV1>)>> {
        let vfs = &*self.inner.vfs;
        let mut strays = std::collections::HashMap::new();
        for (dir, names) in &listing.fanout {
            for name in names {
                let Ok(digest) = name.parse::<Digest>() else {
                    continue;
                };
                if indexed(&digest)? {
                    continue;
                }
                if let Some(mut found) = examine(vfs, &dir.join(name), name, self.format().hash) {
                    // The record of a snapshot GC collected is on its way out: never one to bring
                    // back. (Other files GC marked may hold bytes a later commit reused, so they
                    // still count as blobs.)
                    if found.1.is_some() && index::is_swept(&self.conn(), &digest)? {
                        found.1 = None;
                    }
                    strays.insert(digest, found);
                }
            }
        }
        Ok(strays)
    }
}
