//! [`Batch`]: putting blobs and committing a snapshot, following the commit protocol.
//!
//! 1. The batch holds `LOCK` shared from creation to commit, so no GC runs in between.
//! 2. Each put hashes the bytes and dedupes against index rows (and this batch's own puts).
//! 3. A new large blob becomes a file as in [`vfs::publish`]: the put writes a temp file, and an
//!    I/O thread of the batch ([`crate::flush`]) fsyncs it and links it at its name.
//! 4. Commit waits for every such file, then fsyncs each touched directory once,
//! 5. then writes every row in one `BEGIN IMMEDIATE` transaction and commits it.
//! 6. Only then does `commit` return `Ok`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use camino::Utf8PathBuf;

use crate::codec::{self, Encoded, ObjectKind};
use crate::digest::{Digest, DigestSet};
use crate::error::{Error, Result};
use crate::flush::{self, Finished, Flusher, Job};
use crate::index::{self, BlobRow};
use crate::lock::LockGuard;
use crate::seeded::{self, SeededBug};
use crate::snapshot::{NewSnapshot, RecordV1, SnapshotId};
use crate::store::Store;
use crate::vfs;

/// A set of puts that becomes durable, together with one snapshot, at [`Batch::commit`].
///
/// Dropping a batch without committing it records nothing: any blob files it wrote are
/// unreferenced and go at the next [`Store::gc`].
///
/// `put` takes `&self`, so one batch can be fed from many threads.
#[derive(Debug)]
#[must_use = "a batch stores nothing until it is committed"]
pub struct Batch<'s> {
    store: &'s Store,
    _lock: LockGuard,
    pending: Mutex<Pending>,
    flusher: Mutex<Flusher>,
    // Counted outside the mutex: a dedup hit should cost little more than hashing.
    puts: AtomicU64,
    bytes_put: AtomicU64,
}

#[derive(Debug, Default)]
struct Pending {
    rows: Vec<BlobRow>,
    seen: DigestSet,
    /// Directories whose new entries must be made durable before the index commit.
    dirs: BTreeSet<Utf8PathBuf>,
    /// Blob files the flusher finished on the calling thread.
    flushed: Finished,
    /// Blob files held back until after the index commit: only with
    /// [`SeededBug::CommitBeforeBlobs`] switched on, never otherwise.
    deferred: Vec<(Utf8PathBuf, String, Vec<u8>)>,
    stats: BatchStats,
}

/// What a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchStats {
    /// Calls to `put`.
    pub puts: u64,
    /// Bytes given to `put` (uncompressed).
    pub bytes_put: u64,
    /// Blobs the store did not have.
    pub new_blobs: u64,
    /// Uncompressed bytes of those new blobs.
    pub new_bytes: u64,
    /// Bytes written for them: file lengths with headers, or inline payloads.
    pub bytes_written: u64,
}

/// The result of one put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Put {
    /// The blob's digest.
    pub digest: Digest,
    /// `false` when the store (or this batch) already had the bytes and nothing was written.
    pub new: bool,
}

/// A committed snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Commit {
    /// The new snapshot's id.
    pub id: SnapshotId,
    /// What the batch did, including the snapshot record.
    pub stats: BatchStats,
}

impl Store {
    /// Starts a batch. It holds the store's shared lock until it is committed or dropped.
    pub fn batch(&self) -> Result<Batch<'_>> {
        let lock = self.lock_shared()?;
        self.refresh_known()?;
        Ok(Batch {
            store: self,
            _lock: lock,
            pending: Mutex::new(Pending::default()),
            flusher: Mutex::new(Flusher::new(self.inner.vfs.clone())),
            puts: AtomicU64::new(0),
            bytes_put: AtomicU64::new(0),
        })
    }
}

impl<'s> Batch<'s> {
    /// Stores `bytes` (deduplicated) and returns their digest. Nothing is durable before
    /// [`Batch::commit`].
    pub fn put(&self, bytes: &[u8]) -> Result<Put> {
        self.put_as(bytes, false, ObjectKind::Data)
    }

    /// Like [`Batch::put`], but always as a file, never inline, so the blob survives the loss of
    /// the index (manifests use this so that a store can be rebuilt from its files).
    pub fn put_file(&self, bytes: &[u8]) -> Result<Put> {
        self.put_as(bytes, true, ObjectKind::Data)
    }

    /// Whether the store or this batch holds `digest`. A blob another process commits while
    /// this batch runs may be reported missing (putting it again is harmless: it dedupes).
    pub fn contains(&self, digest: &Digest) -> Result<bool> {
        self.store.check_algo(digest)?;
        self.is_known(digest, false)
    }

    /// Whether this batch stored `digest` itself (a new row, not a dedup hit).
    pub fn stored(&self, digest: &Digest) -> bool {
        self.pending().seen.contains(digest)
    }

    /// The store this batch writes to.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// What the batch has done so far.
    pub fn stats(&self) -> BatchStats {
        let mut stats = self.pending().stats;
        stats.puts = self.puts.load(Ordering::Relaxed);
        stats.bytes_put = self.bytes_put.load(Ordering::Relaxed);
        stats
    }

    fn put_as(&self, bytes: &[u8], force_file: bool, kind: ObjectKind) -> Result<Put> {
        let digest = self.store.digest_of(bytes);
        self.puts.fetch_add(1, Ordering::Relaxed);
        self.bytes_put
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if self.is_known(&digest, false)? {
            return Ok(Put { digest, new: false });
        }
        let encoded = codec::encode(
            bytes,
            self.store.inner.zstd_level,
            self.store.format().byte_planes(),
        );
        let inline = !force_file && bytes.len() as u64 <= self.store.format().inline_limit;
        let row = if inline {
            inline_row(digest, bytes.len() as u64, encoded)
        } else {
            self.write_file(digest, bytes.len() as u64, &encoded, kind)?
        };
        Ok(Put {
            digest,
            new: self.add_row(row),
        })
    }

    /// Dedupe against rows known from earlier, then this batch's puts, then the index itself:
    /// never against file existence, which a crash can make lie. Unless `exact`, a digest
    /// missing from a complete load of the index is taken as missing without a query (a row
    /// committed since by another process is then only written again, which dedupes).
    fn is_known(&self, digest: &Digest, exact: bool) -> Result<bool> {
        if self.store.known().contains(digest) || self.pending().seen.contains(digest) {
            return Ok(true);
        }
        if seeded::active(SeededBug::DedupeByFileExistence)
            && let Ok(Some(_)) = self.store.inner.vfs.file_len(&self.store.blob_path(digest))
        {
            return Ok(true);
        }
        let complete = self.store.load_known()?;
        if self.store.known().contains(digest) {
            return Ok(true);
        }
        if complete && !exact {
            return Ok(false);
        }
        let found = index::has_blob(&self.store.conn(), digest)?;
        if found {
            self.store.known().insert(*digest);
        }
        Ok(found)
    }

    fn write_file(
        &self,
        digest: Digest,
        size: u64,
        enc: &Encoded<'_>,
        kind: ObjectKind,
    ) -> Result<BlobRow> {
        let vfs = &*self.store.inner.vfs;
        let dir = self.store.fanout_dir(&digest);
        let header = codec::header(enc.codec, kind, size);
        let row = BlobRow {
            digest,
            size,
            stored: (codec::HEADER_LEN + enc.payload.len()) as u64,
            codec: enc.codec,
            inline: None,
        };
        if seeded::active(SeededBug::CommitBeforeBlobs) {
            let bytes = [&header[..], &enc.payload].concat();
            self.pending()
                .deferred
                .push((dir, digest.to_string(), bytes));
            return Ok(row);
        }
        vfs::ensure_dir(vfs, &dir)?;
        // ORDER: `objects/` is fsynced before the commit even when this batch found the fan-out
        // directory already there: a batch that failed (or another process, not yet committed)
        // may have created it without making its name durable, and a blob whose directory is
        // lost in a crash is lost with it.
        self.pending()
            .dirs
            .insert(self.store.root().join("objects"));
        let parts: [&[u8]; 2] = [&header, &enc.payload];
        let temp = vfs::write_temp(vfs, &dir, &parts)?;
        let job = Job {
            temp,
            target: dir.join(digest.to_string()),
            digest,
            size,
        };
        let done = self.flusher().submit(job);
        let mut pending = self.pending();
        flush::merge(&mut pending.flushed, done);
        // Even a file that existed needs the directory fsync: its writer (another process, not
        // yet committed) may not have made its name durable yet.
        pending.dirs.insert(dir);
        Ok(row)
    }

    /// The stored length and codec of the file at a blob's name, if it decodes to the right
    /// bytes (it may have been written with another codec or compression level than this
    /// batch's copy).
    fn existing_file(&self, digest: Digest, size: u64) -> Option<(u64, codec::Codec)> {
        let file = self
            .store
            .inner
            .vfs
            .read(&self.store.blob_path(&digest))
            .ok()?;
        let stored = file.len() as u64;
        // ORDER: the length check comes before decoding, as in a read.
        if codec::parse_header(&file).ok()?.len != size {
            return None;
        }
        let (header, bytes) = codec::decode_file(file).ok()?;
        (self.store.digest_of(&bytes) == digest).then_some((stored, header.codec))
    }

    /// Records a new row; `false` if another thread of this batch got there first.
    fn add_row(&self, row: BlobRow) -> bool {
        let mut pending = self.pending();
        if !pending.seen.insert(row.digest) {
            return false;
        }
        pending.stats.new_blobs += 1;
        pending.stats.new_bytes += row.size;
        pending.stats.bytes_written += row.stored;
        pending.rows.push(row);
        true
    }

    /// Makes every put durable and records `snapshot`, in the order of the commit protocol.
    /// Fails with [`Error::DanglingReference`] if the snapshot references a blob that neither the
    /// store nor this batch holds. On any error nothing is recorded.
    pub fn commit(self, snapshot: NewSnapshot) -> Result<Commit> {
        self.check_references(&snapshot)?;
        let record = self.put_record(&snapshot)?;
        let stats = self.stats();
        let mut pending = std::mem::take(&mut *self.pending());
        // ORDER: every new file's data must be durable, and linked, before its directory fsync.
        let mut flushed = self.flusher().finish();
        flush::merge(&mut flushed, std::mem::take(&mut pending.flushed));
        let durable = self.settle(flushed).and_then(|kept| {
            // A good file kept at a blob's name is what the row describes, not this batch's
            // copy (another codec or level gives another length, which would read as damage).
            for row in pending.rows.iter_mut() {
                if let Some(&(stored, codec)) = kept.get(&row.digest) {
                    row.stored = stored;
                    row.codec = codec;
                }
            }
            // ORDER: every new file's name must be durable before the index row that points at
            // it.
            if seeded::active(SeededBug::SkipDirFsync) {
                return Ok(());
            }
            vfs::sync_dirs(
                &*self.store.inner.vfs,
                pending.dirs.iter().map(Utf8PathBuf::as_path),
            )
        });
        if let Err(e) = durable {
            // A commit that reported failure must not come back as a snapshot: its record file,
            // left without a row, would be adopted by the next session (or brought back by a
            // rebuild) as an interrupted commit. No row refers to it yet, so it can go.
            let _ = self
                .store
                .inner
                .vfs
                .remove_file(&self.store.blob_path(&record));
            return Err(e);
        }
        let id = self.commit_rows(&pending.rows, &snapshot, &record)?;
        self.write_deferred(&pending.deferred)?;
        let mut known = self.store.known();
        for row in &pending.rows {
            known.insert(row.digest);
        }
        Ok(Commit { id, stats })
    }

    /// Fails if any blob file could not be made durable; otherwise resolves the files whose name
    /// was taken: a file at a blob's name with no index row is left over from a crash or being
    /// written by another process, and is kept only if it decodes to the right bytes, else the
    /// new (durable) copy is renamed over it.
    /// Returns the files kept, with their stored length and codec.
    fn settle(&self, flushed: Finished) -> Result<HashMap<Digest, (u64, codec::Codec)>> {
        let vfs = &*self.store.inner.vfs;
        if let Some(e) = flushed.error {
            for existed in &flushed.existed {
                let _ = vfs.remove_file(&existed.temp);
            }
            return Err(e);
        }
        let mut kept_files = HashMap::new();
        let mut existed = flushed.existed.into_iter();
        while let Some(e) = existed.next() {
            let kept = if let Some(found) = self.existing_file(e.digest, e.size) {
                kept_files.insert(e.digest, found);
                vfs.remove_file(&e.temp)
                    .map_err(|err| Error::io("remove", &e.temp, err))
            } else {
                vfs.rename(&e.temp, &e.target)
                    .map_err(|err| Error::io("rename", &e.target, err))
            };
            if let Err(err) = kept {
                for rest in existed {
                    let _ = vfs.remove_file(&rest.temp);
                }
                return Err(err);
            }
        }
        Ok(kept_files)
    }

    /// Writes the blob files that [`SeededBug::CommitBeforeBlobs`] held back; nothing otherwise.
    fn write_deferred(&self, deferred: &[(Utf8PathBuf, String, Vec<u8>)]) -> Result<()> {
        let vfs = &*self.store.inner.vfs;
        for (dir, name, bytes) in deferred {
            vfs::ensure_dir(vfs, dir)?;
            vfs::publish(vfs, dir, name, &[bytes])?;
            vfs::sync_dir(vfs, dir)?;
        }
        Ok(())
    }

    fn check_references(&self, snapshot: &NewSnapshot) -> Result<()> {
        for digest in std::iter::once(&snapshot.manifest).chain(&snapshot.refs) {
            self.store.check_algo(digest)?;
            if !self.is_known(digest, true)? {
                return Err(Error::DanglingReference { digest: *digest });
            }
        }
        Ok(())
    }

    fn put_record(&self, snapshot: &NewSnapshot) -> Result<Digest> {
        let record = RecordV1 {
            kind: snapshot.kind,
            created_ns: snapshot.created_ns,
            manifest: snapshot.manifest,
            parent: snapshot.parent,
            label: snapshot.label.clone(),
            meta: snapshot.meta.clone(),
            nonce: u64::from(vfs::random_u32()) << 32 | u64::from(vfs::random_u32()),
        };
        let bytes =
            postcard::to_stdvec(&record).expect("postcard encodes plain structs into a Vec");
        Ok(self.put_as(&bytes, true, ObjectKind::Record)?.digest)
    }

    fn commit_rows(
        &self,
        rows: &[BlobRow],
        snapshot: &NewSnapshot,
        record: &Digest,
    ) -> Result<SnapshotId> {
        let mut conn = self.store.conn_to_write()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(Error::index("begin"))?;
        for row in rows {
            index::insert_blob(&tx, row)?;
        }
        let id = index::insert_snapshot(&tx, snapshot, record)?;
        let needs: Vec<Utf8PathBuf> = rows
            .iter()
            .filter(|r| r.inline.is_none())
            .map(|r| self.store.blob_path(&r.digest))
            .collect();
        self.store
            .inner
            .vfs
            .before_commit(&needs)
            .map_err(|e| Error::io("commit barrier", self.store.root(), e))?;
        // ORDER: success is reported only after this COMMIT (WAL, synchronous=FULL) returns.
        tx.commit().map_err(Error::index("commit"))?;
        self.store.committed();
        Ok(id)
    }

    fn flusher(&self) -> MutexGuard<'_, Flusher> {
        // The flusher's state is a channel and thread handles; a panic while holding it leaves
        // them usable.
        self.flusher.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // Pending only accumulates plain values; a panic mid-update cannot break an invariant
        // that commit relies on, beyond losing that one put.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn inline_row(digest: Digest, size: u64, enc: Encoded<'_>) -> BlobRow {
    BlobRow {
        digest,
        size,
        stored: enc.payload.len() as u64,
        codec: enc.codec,
        inline: Some(enc.payload.into_owned()),
    }
}
